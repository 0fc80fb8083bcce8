//! The PNG of one scenario: the fleet's request rate (10-second windows) over time for
//! each schedule run, the event shaded, 1.5 × the steady mean dashed.

use std::path::Path;

use plotters::prelude::*;

use crate::report::{Summary, STEADY_FACTOR, WINDOW};
use crate::sim::Run;

/// Where Debian's `fonts-dejavu-core` puts the font the labels use.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers the labels' font (once per process).
pub fn load_font() -> Result<(), String> {
    let bytes = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{FONT}: not a font"))
}

const COLORS: [RGBColor; 3] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
];

/// Draws `runs` (same scenario; each labelled) into `path`.
pub fn draw(runs: &[(&str, &Run, &Summary)], path: &Path) -> Result<(), String> {
    let Some((_, first, base)) = runs.first() else {
        return Ok(());
    };
    let s = &first.setup;
    let hours = s.length.as_secs_f64() / 3600.0;
    let series: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|(_, run, _)| {
            run.per_second
                .chunks(WINDOW)
                .enumerate()
                .map(|(i, c)| {
                    let n: u32 = c.iter().map(|b| b.iter().sum::<u32>()).sum();
                    ((i * WINDOW) as f64 / 3600.0, f64::from(n) / c.len() as f64)
                })
                .collect()
        })
        .collect();
    // Clipped at 16 × the steady mean, so that a spike of hundreds of times it (the
    // official model after a power-on) leaves the other lines readable.
    let highest = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max);
    let clip = 16.0 * base.mean.max(0.1);
    let top = highest.min(clip) * 1.05;
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(err)?;
    let booting = if s.boot_spread.as_secs() == 3600 {
        String::new()
    } else {
        format!(", all booting within {} s", s.boot_spread.as_secs())
    };
    let clipped = if highest > clip {
        format!(", clipped at {clip:.0}/s (highest {highest:.0}/s)")
    } else {
        String::new()
    };
    let title = format!(
        "{}{booting}: {} devices, requests/s (10 s windows){clipped}",
        s.scenario.name(),
        s.devices
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..hours, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("hours")
        .y_desc("requests/s")
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let from = s.event_at.as_secs_f64() / 3600.0;
    let to = (s.event_at + s.scenario.duration()).as_secs_f64() / 3600.0;
    let to = if to - from < 0.005 { from + 0.005 } else { to };
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(from, 0.0), (to, top)],
            RGBColor(0xdd, 0xdd, 0xdd).filled(),
        )))
        .map_err(err)?
        .label(format!("event ({})", s.scenario.name()))
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 15, y + 5)],
                RGBColor(0xdd, 0xdd, 0xdd).filled(),
            )
        });
    let limit = STEADY_FACTOR * base.mean;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, limit), (hours, limit)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(err)?
        .label(format!("{STEADY_FACTOR} x steady mean"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLACK));
    for (n, ((label, _, sum), points)) in runs.iter().zip(&series).enumerate() {
        let color = COLORS[n % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(x, y)| (x, y.min(top))),
                color.stroke_width(1),
            ))
            .map_err(err)?
            .label(format!(
                "{label}: peak after {:.1}x mean, steady again {} s after",
                sum.peak_after / sum.mean.max(f64::MIN_POSITIVE),
                sum.recovery
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 15, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
