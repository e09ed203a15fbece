//! `INSERT INTO … SELECT` streams its input into one transaction: inserting a million rows
//! from a CSV file keeps `jammi`'s peak memory bounded by the batch size, not the input.

use std::io::{BufWriter, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{jammi, stderr};

const ROWS: usize = 1_000_000;
/// Far below what holding a million rows costs (the input as Arrow batches plus the
/// validated rows: several hundred MiB), far above what streaming needs.
const PEAK_LIMIT_BYTES: u64 = 256 << 20;

/// The process's peak resident set so far (`VmHWM`), while it runs.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_million_row_insert_from_csv_runs_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("staging.csv");
    let mut out = BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "name,kind,path").unwrap();
    for i in 0..ROWS {
        writeln!(out, "bulk/model-{i:07},embedding,/weights/{i}").unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();

    let started = Instant::now();
    let mut child = jammi(dir.path())
        .args([
            "--db",
            "sqlite://catalog.db",
            "--format",
            "csv",
            "-c",
            &format!(
                "CREATE EXTERNAL TABLE staging STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
                csv.display()
            ),
            "-c",
            "INSERT INTO jammi.public.models (model_id, version, model_type, backend, task, artifact_path) \
             SELECT name, 1, kind, 'candle', 'text_embedding', path FROM staging",
            "-c",
            "SELECT count(*) AS n FROM jammi.public.models",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_rss(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["count", &ROWS.to_string(), "n", &ROWS.to_string()],
        "the INSERT's count, then the table's"
    );
    eprintln!(
        "inserted {ROWS} rows from CSV in {:.1} s, peak RSS {:.0} MiB",
        elapsed.as_secs_f64(),
        peak as f64 / (1 << 20) as f64
    );
    // For docs/benchmarks.md (benches/report.py reads it when present).
    let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("insert_rss.json");
    std::fs::write(
        report,
        format!(
            "{{\"rows\": {ROWS}, \"peak_rss_bytes\": {peak}, \"seconds\": {:.3}}}\n",
            elapsed.as_secs_f64()
        ),
    )
    .unwrap();
    assert!(peak > 0, "VmHWM was never read");
    assert!(
        peak < PEAK_LIMIT_BYTES,
        "peak RSS {peak} bytes for {ROWS} rows: the INSERT holds its input in memory"
    );
}
