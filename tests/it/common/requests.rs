//! S3 requests a pipeline made, by operation, from its metrics.

use earshot::pipeline::Pipeline;

pub type Requests = std::collections::BTreeMap<String, u64>;

/// `earshot_s3_requests` by operation, from the pipeline's metrics.
pub fn s3_requests(pipeline: &Pipeline) -> Requests {
    pipeline
        .metrics
        .render()
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("earshot_s3_requests_total{operation=\"")?;
            let (operation, count) = rest.split_once("\"} ")?;
            Some((operation.to_owned(), count.parse().ok()?))
        })
        .collect()
}

pub fn since(after: &Requests, before: &Requests) -> Requests {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}
