//! What the Mender dashboard would show while the demo runs: the deployment's status and
//! substate as the device reports them, read from the in-process server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mender_bridge_sim::Sim;

/// Prints each new status report of `device` in `deployment` until stopped.
pub struct Dashboard {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// One line per report: time since the start, status, substate.
fn print_new(sim: &Sim, deployment: &str, device: &str, seen: &mut usize, start: Instant) {
    let data = sim.snapshot();
    let Some(dd) = data
        .deployments
        .get(deployment)
        .and_then(|d| d.devices.get(device))
    else {
        return;
    };
    for h in dd.history.iter().skip(*seen) {
        let t = start.elapsed().as_secs_f64();
        match &h.substate {
            Some(s) => println!("  [dashboard] {t:6.2} s  {:<18} {s}", h.status),
            None => println!("  [dashboard] {t:6.2} s  {}", h.status),
        }
    }
    *seen = dd.history.len();
}

impl Dashboard {
    pub fn watch(sim: Arc<Sim>, deployment: String, device: String, start: Instant) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut seen = 0;
            loop {
                print_new(&sim, &deployment, &device, &mut seen, start);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopped.changed() => {
                        print_new(&sim, &deployment, &device, &mut seen, start);
                        return;
                    }
                }
            }
        });
        Dashboard { stop, task }
    }

    /// Prints what is left and stops.
    pub async fn close(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
