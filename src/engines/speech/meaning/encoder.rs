//! all-MiniLM-L6-v2's sentence encoder: a six-layer BERT (384 wide, 12 heads) whose token
//! vectors are averaged and scaled to length 1, as sentence-transformers runs it. The weights
//! are the package's `model.safetensors`, read once; products of matrices go to
//! `matrixmultiply`'s SGEMM, the rest is plain loops.

use std::collections::HashMap;

/// The model's shape (its `config.json`).
const WIDTH: usize = 384;
const HEADS: usize = 12;
const HEAD: usize = WIDTH / HEADS;
const INNER: usize = 1536;
const LAYERS: usize = 6;
const POSITIONS: usize = 512;
const EPSILON: f32 = 1e-12;

struct Dense {
    /// `[out × in]`, row-major, as PyTorch keeps a linear layer.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attended: Dense,
    attended_norm: Norm,
    inner: Dense,
    outer: Dense,
    outer_norm: Norm,
}

pub struct Encoder {
    words: Vec<f32>,
    positions: Vec<f32>,
    segment: Vec<f32>,
    embedded_norm: Norm,
    layers: Vec<Layer>,
}

impl Encoder {
    /// Reads the weights from a safetensors file's bytes.
    ///
    /// # Errors
    /// The bytes are not safetensors, or a tensor is missing, not F32, or of the wrong shape.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Encoder, String> {
        let tensors = Tensors::parse(bytes)?;
        let dense = |name: &str, out: usize, inp: usize| -> Result<Dense, String> {
            Ok(Dense {
                weight: tensors.get(&format!("{name}.weight"), &[out, inp])?,
                bias: tensors.get(&format!("{name}.bias"), &[out])?,
            })
        };
        let norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                weight: tensors.get(&format!("{name}.weight"), &[WIDTH])?,
                bias: tensors.get(&format!("{name}.bias"), &[WIDTH])?,
            })
        };
        let layers = (0..LAYERS)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    query: dense(&format!("{p}.attention.self.query"), WIDTH, WIDTH)?,
                    key: dense(&format!("{p}.attention.self.key"), WIDTH, WIDTH)?,
                    value: dense(&format!("{p}.attention.self.value"), WIDTH, WIDTH)?,
                    attended: dense(&format!("{p}.attention.output.dense"), WIDTH, WIDTH)?,
                    attended_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                    inner: dense(&format!("{p}.intermediate.dense"), INNER, WIDTH)?,
                    outer: dense(&format!("{p}.output.dense"), WIDTH, INNER)?,
                    outer_norm: norm(&format!("{p}.output.LayerNorm"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let words = tensors.rows("embeddings.word_embeddings.weight", WIDTH)?;
        Ok(Encoder {
            words,
            positions: tensors.get("embeddings.position_embeddings.weight", &[POSITIONS, WIDTH])?,
            segment: tensors.get("embeddings.token_type_embeddings.weight", &[2, WIDTH])?[..WIDTH]
                .to_vec(),
            embedded_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// The most tokens one pass takes.
    pub fn max_tokens(&self) -> usize {
        POSITIONS
    }

    /// The unit-length mean of the token vectors of `ids` (which start with `[CLS]` and end
    /// with `[SEP]`; ids past the vocabulary count as id 0).
    pub fn embed(&self, ids: &[u32]) -> Vec<f32> {
        let n = ids.len().min(POSITIONS);
        let vocabulary = self.words.len() / WIDTH;
        let mut x = vec![0f32; n * WIDTH];
        for (t, &id) in ids[..n].iter().enumerate() {
            let id = if (id as usize) < vocabulary {
                id as usize
            } else {
                0
            };
            let row = &mut x[t * WIDTH..(t + 1) * WIDTH];
            let word = &self.words[id * WIDTH..(id + 1) * WIDTH];
            let position = &self.positions[t * WIDTH..(t + 1) * WIDTH];
            for i in 0..WIDTH {
                row[i] = word[i] + position[i] + self.segment[i];
            }
        }
        normalise(&mut x, &self.embedded_norm);
        for layer in &self.layers {
            layer.run(&mut x, n);
        }
        let mut pooled = vec![0f32; WIDTH];
        for row in x.chunks_exact(WIDTH) {
            for (p, v) in pooled.iter_mut().zip(row) {
                *p += v;
            }
        }
        let length = pooled.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        pooled.iter_mut().for_each(|v| *v /= length);
        pooled
    }
}

impl Layer {
    fn run(&self, x: &mut [f32], n: usize) {
        let q = self.query.apply(x, n);
        let k = self.key.apply(x, n);
        let v = self.value.apply(x, n);
        let mut context = vec![0f32; n * WIDTH];
        let mut scores = vec![0f32; n * n];
        let scale = 1.0 / (HEAD as f32).sqrt();
        for h in 0..HEADS {
            let column = h * HEAD;
            // scores = Q_h · K_hᵀ, each row then a softmax.
            product(
                Matrix::rows(&q[column..], n, HEAD, WIDTH),
                Matrix::columns(&k[column..], HEAD, n, WIDTH),
                &mut scores,
                n,
                0.0,
            );
            for row in scores.chunks_exact_mut(n) {
                let top = row.iter().fold(f32::MIN, |a, &b| a.max(b * scale));
                let mut sum = 0.0;
                for s in row.iter_mut() {
                    *s = (*s * scale - top).exp();
                    sum += *s;
                }
                row.iter_mut().for_each(|s| *s /= sum);
            }
            product(
                Matrix::rows(&scores, n, n, n),
                Matrix::rows(&v[column..], n, HEAD, WIDTH),
                &mut context[column..],
                WIDTH,
                0.0,
            );
        }
        let mut attended = self.attended.apply(&context, n);
        add(&mut attended, x);
        normalise(&mut attended, &self.attended_norm);
        let mut inner = self.inner.apply(&attended, n);
        inner.iter_mut().for_each(|v| *v = gelu(*v));
        let mut out = self.outer.apply(&inner, n);
        add(&mut out, &attended);
        normalise(&mut out, &self.outer_norm);
        x.copy_from_slice(&out);
    }
}

impl Dense {
    /// `x · Wᵀ + b` for `n` rows of `x`.
    fn apply(&self, x: &[f32], n: usize) -> Vec<f32> {
        let (out, inp) = (self.bias.len(), self.weight.len() / self.bias.len());
        let mut y: Vec<f32> = self.bias.repeat(n);
        product(
            Matrix::rows(x, n, inp, inp),
            Matrix::columns(&self.weight, inp, out, inp),
            &mut y,
            out,
            1.0,
        );
        y
    }
}

fn add(to: &mut [f32], from: &[f32]) {
    to.iter_mut().zip(from).for_each(|(a, b)| *a += b);
}

fn normalise(x: &mut [f32], norm: &Norm) {
    for row in x.chunks_exact_mut(WIDTH) {
        let mean = row.iter().sum::<f32>() / WIDTH as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / WIDTH as f32;
        let scale = 1.0 / (var + EPSILON).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * scale * norm.weight[i] + norm.bias[i];
        }
    }
}

/// BERT's exact GELU, `x·Φ(x)`.
fn gelu(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
}

/// The error function to within 1.2e-7 (Numerical Recipes' `erfc` by Chebyshev fit).
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
}

/// A read-only `rows × cols` view of a slice, by its row and column strides.
struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// Row-major, rows `stride` apart.
    fn rows(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Matrix<'a> {
        Matrix {
            data,
            rows,
            cols,
            row_stride: stride,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `cols × rows` matrix whose rows are `stride` apart.
    fn columns(data: &'a [f32], rows: usize, cols: usize, stride: usize) -> Matrix<'a> {
        Matrix {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: stride,
        }
    }

    /// One past the last element the view reads.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
    }
}

/// `c = a · b + beta · c`, where `c` is row-major with rows `c_stride` apart.
#[allow(unsafe_code)]
fn product(a: Matrix<'_>, b: Matrix<'_>, c: &mut [f32], c_stride: usize, beta: f32) {
    assert_eq!(a.cols, b.rows, "inner dimensions agree");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(a.extent() <= a.data.len() && b.extent() <= b.data.len());
    assert!(m == 0 || n == 0 || (m - 1) * c_stride + n <= c.len());
    assert!(n <= c_stride);
    // SAFETY: the asserts above keep every element SGEMM reads or writes inside the slices,
    // and `c` is borrowed mutably while `a` and `b` are shared, so they cannot overlap.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            c_stride as isize,
            1,
        );
    }
}

/// The F32 tensors of a safetensors file: an 8-byte little-endian header length, a JSON header
/// of `{name: {dtype, shape, data_offsets}}`, then the data.
struct Tensors<'a> {
    header: HashMap<String, serde_json::Value>,
    data: &'a [u8],
}

impl<'a> Tensors<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Tensors<'a>, String> {
        let size = bytes
            .get(..8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes")))
            .ok_or("shorter than a safetensors header")?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(8))
            .filter(|&e| e <= bytes.len())
            .ok_or("the safetensors header runs past the end")?;
        let header = serde_json::from_slice(&bytes[8..end])
            .map_err(|e| format!("the safetensors header: {e}"))?;
        Ok(Tensors {
            header,
            data: &bytes[end..],
        })
    }

    /// The tensor `name`, which must be F32 and of `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let (found, values) = self.read(name)?;
        if found != shape {
            return Err(format!("{name} has shape {found:?}, not {shape:?}"));
        }
        Ok(values)
    }

    /// The two-dimensional tensor `name` of rows `width` wide, however many rows.
    fn rows(&self, name: &str, width: usize) -> Result<Vec<f32>, String> {
        let (shape, values) = self.read(name)?;
        if shape.len() != 2 || shape[1] != width || shape[0] == 0 {
            return Err(format!("{name} has shape {shape:?}, not [_, {width}]"));
        }
        Ok(values)
    }

    fn read(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), String> {
        #[derive(serde::Deserialize)]
        struct Entry {
            dtype: String,
            shape: Vec<usize>,
            data_offsets: [usize; 2],
        }
        let entry = self
            .header
            .get(name)
            .ok_or_else(|| format!("no tensor {name}"))?;
        let entry: Entry =
            serde_json::from_value(entry.clone()).map_err(|e| format!("tensor {name}: {e}"))?;
        if entry.dtype != "F32" {
            return Err(format!("{name} is {}, not F32", entry.dtype));
        }
        let [start, end] = entry.data_offsets;
        let count: usize = entry.shape.iter().product();
        let bytes = self
            .data
            .get(start..end)
            .filter(|b| b.len() == count * 4)
            .ok_or_else(|| format!("{name}'s data offsets do not fit its shape or the file"))?;
        let values = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
            .collect();
        Ok((entry.shape, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_function_matches_known_values() {
        for (x, expected) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (-2.0, -0.995_322_265_0),
        ] {
            assert!((erf(x) - expected).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn products_follow_the_strides() {
        // [1 2; 3 4] · [5 6; 7 8]ᵀ (b given row-major, read as its transpose) = [17 23; 39 53].
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]);
        let mut c = [1.0; 4];
        product(
            Matrix::rows(&a, 2, 2, 2),
            Matrix::columns(&b, 2, 2, 2),
            &mut c,
            2,
            1.0,
        );
        assert_eq!(c, [18.0, 24.0, 40.0, 54.0]);
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused() {
        assert!(Encoder::from_safetensors(b"abc").is_err());
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        let error = Encoder::from_safetensors(&bytes).err().expect("refused");
        assert!(error.contains("no tensor"), "{error}");
    }
}
