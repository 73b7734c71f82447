//! Draws bench scenario S1's convergence time against the client count, one
//! line per daemon, as an SVG (used by `examples/bench/s1.sh`).
//!
//! `bench_chart IN.csv OUT.svg`; the CSV has the header `daemon,clients,seconds`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use plotters::prelude::*;

type Error = Box<dyn std::error::Error>;

/// Each daemon's (clients, seconds) points, in client order.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: bench_chart IN.csv OUT.svg");
        return ExitCode::from(2);
    };
    match read_csv(input).and_then(|series| draw(&series, output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_chart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read_csv(path: &str) -> Result<Series, Error> {
    let text = std::fs::read_to_string(path)?;
    let mut series = Series::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [daemon, clients, seconds] = fields.as_slice() else {
            return Err(format!("{path}:{}: expected daemon,clients,seconds", n + 1).into());
        };
        series
            .entry(daemon.to_string())
            .or_default()
            .push((clients.parse()?, seconds.parse()?));
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    if series.is_empty() {
        return Err(format!("{path}: no data rows").into());
    }
    Ok(series)
}

fn draw(series: &Series, output: &str) -> Result<(), Error> {
    let points = series.values().flatten();
    let max_x = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let max_y = points.map(|p| p.1).fold(0.01, f64::max) * 1.1;
    let root = SVGBackend::new(output, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("S1 route-reflector fan-in: convergence time", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("clients (2 routes each)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("seconds until every client holds every route")
        .draw()?;
    for (i, (daemon, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(daemon.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
