//! The quality/cost plot (PNG): one line per router curve, one marker per baseline.
//!
//! Text needs a TrueType font, which is not bundled: the first of `ROUTEIQ_PLOT_FONT` and
//! the usual DejaVu/Liberation paths that exists is used. Without one the plot is drawn
//! without text (axes, curves and markers only) and the caller is told.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::TrainError;
use crate::eval::EvalReport;

const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a font for plot text once; returns whether one is available.
fn font_available() -> bool {
    static FONT: OnceLock<bool> = OnceLock::new();
    *FONT.get_or_init(|| {
        let candidates = std::env::var("ROUTEIQ_PLOT_FONT")
            .ok()
            .into_iter()
            .chain(FONT_PATHS.iter().map(|s| s.to_string()));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                // Registered fonts must live for the process; this happens once.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// Writes the plot of `report` to `path`. Returns whether text could be drawn.
pub fn plot(report: &EvalReport, path: &Path) -> Result<bool, TrainError> {
    let with_text = font_available();
    let err = |e: String| TrainError::Io(format!("plot {}: {e}", path.display()));
    let root = BitMapBackend::new(path, (1100, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let scale = 1000.0; // cost per 1k requests
    let all = report.rows.iter().flat_map(|r| r.curve.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, 0f64, f64::INFINITY, 0f64);
    for p in all {
        x0 = x0.min(p.cost * scale);
        x1 = x1.max(p.cost * scale);
        y0 = y0.min(p.quality);
        y1 = y1.max(p.quality);
    }
    if !x0.is_finite() || !y0.is_finite() {
        return Err(err("nothing to plot".into()));
    }
    let xpad = ((x1 - x0) * 0.05).max(1e-6);
    let ypad = ((y1 - y0) * 0.05).max(0.01);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if with_text {
        builder
            .caption(
                format!(
                    "{}: quality vs cost ({} prompts, {})",
                    report.data, report.prompts, report.embedder
                ),
                ("sans-serif", 22),
            )
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart = builder
        .build_cartesian_2d((x0 - xpad)..(x1 + xpad), (y0 - ypad)..(y1 + ypad))
        .map_err(|e| err(e.to_string()))?;
    let mut mesh = chart.configure_mesh();
    if with_text {
        mesh.x_desc("mean cost (USD per 1k requests)")
            .y_desc("mean quality");
    } else {
        mesh.disable_x_mesh()
            .disable_y_mesh()
            .x_labels(0)
            .y_labels(0);
    }
    mesh.draw().map_err(|e| err(e.to_string()))?;

    for (color_i, row) in report.rows.iter().enumerate() {
        let color = Palette99::pick(color_i).to_rgba();
        let mut pts: Vec<(f64, f64)> = row
            .curve
            .iter()
            .map(|p| (p.cost * scale, p.quality))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if pts.len() > 1 {
            let series = chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?;
            if with_text {
                series.label(row.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            }
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 2, color.filled())))
                .map_err(|e| err(e.to_string()))?;
        } else {
            let size = if row.kind == "router" { 6 } else { 5 };
            let series = chart
                .draw_series(
                    pts.iter()
                        .map(|p| TriangleMarker::new(*p, size, color.filled())),
                )
                .map_err(|e| err(e.to_string()))?;
            if with_text {
                series
                    .label(row.name.clone())
                    .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 5, color.filled()));
            }
        }
    }
    if with_text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(with_text)
}
