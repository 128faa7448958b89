//! What a moderation provider sends back, and the token its callback URL carries: an AMS task
//! result, a Shumei audio result, an HTTP engine's answer (any bytes: a result, "not finished",
//! or an error, never a panic), and a job token: any string is checked and refused unless this
//! key signed it; a token this key signs over any claims the fuzzer writes verifies to exactly
//! those claims, or says it expired.
#![no_main]

use earshot::engines::{ams, http, shumei};
use earshot::model::Scene;
use earshot::token::{Claims, Signer};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = ams::result_of(bytes, "ams");
    let _ = shumei::result_of(bytes, "shumei");
    let _ = http::verdict_of(bytes, &[Scene::Porn, Scene::Ads, Scene::Illegal]);
    let signer = Signer::new("fuzz-key");
    if let Ok(text) = std::str::from_utf8(bytes) {
        assert!(
            signer.verify(text, 0).is_err(),
            "a token nobody signed was accepted"
        );
    }
    if let Ok(claims) = serde_json::from_slice::<Claims>(bytes) {
        let token = signer.sign(&claims);
        match signer.verify(&token, 0) {
            Ok(read) => assert_eq!(read, claims),
            Err(e) => panic!("a token just signed is refused: {e}"),
        }
        if claims.expires < u64::MAX {
            assert!(signer.verify(&token, claims.expires + 1).is_err());
        }
        assert!(Signer::new("another-key").verify(&token, 0).is_err());
    }
});
