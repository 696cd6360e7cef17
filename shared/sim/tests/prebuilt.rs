//! A prebuilt result file is served byte for byte as the generated one, with the same ETag.

use runbridge_core::VendorKind;
use runbridge_sim::{csvgen, SimConfig, SimHandle};

#[tokio::test]
async fn a_prebuilt_file_serves_the_generated_bytes_and_their_md5_etag() {
    let sim = SimHandle::start(SimConfig::default()).await.unwrap();
    let (seed, rows) = (11, 5_000);
    let path = std::env::temp_dir().join(format!("runbridge-prebuilt-{}.csv", std::process::id()));
    sim.sim.prebuild(seed, rows, &path).unwrap();
    // The file on disk is the one served: change one byte and the download must show it.
    let url = sim
        .sim
        .download_url(VendorKind::Amc, "run-1", "part-00000.csv", rows, seed);
    let body = reqwest::get(&url).await.unwrap();
    let etag = body.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = body.bytes().await.unwrap();
    let expected = csvgen::generate(seed, rows);
    assert_eq!(bytes.len(), expected.len());
    assert!(
        bytes == expected,
        "prebuilt bytes differ from the generated ones"
    );
    assert_eq!(
        etag,
        format!("\"{}\"", hex::encode(csvgen::md5(seed, rows)))
    );
    let mut tampered = expected.clone();
    tampered[100] ^= 1;
    std::fs::write(&path, &tampered).unwrap();
    let served = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert!(
        served == tampered,
        "downloads must be read from the prebuilt file"
    );
    std::fs::remove_file(&path).unwrap();
    sim.stop().await;
}
