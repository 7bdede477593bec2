//! The in-process bus: jobs and alerts queue in memory until the embedded runner takes them.

use std::sync::{Arc, Mutex, MutexGuard};

use tocsin_core::Alert;
use tocsin_core::ports::{Bus, BusError};
use tocsin_core::record::DeliveryJob;

#[derive(Default)]
struct Queues {
    alerts: Vec<Alert>,
    deliveries: Vec<DeliveryJob>,
}

/// An in-process `Bus`. Clones share the same queues.
#[derive(Clone, Default)]
pub struct LocalBus {
    inner: Arc<Mutex<Queues>>,
}

impl LocalBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes every delivery job published so far, in publish order.
    pub fn take_deliveries(&self) -> Vec<DeliveryJob> {
        std::mem::take(&mut self.lock().deliveries)
    }

    /// Takes every alert published so far, in publish order.
    pub fn take_alerts(&self) -> Vec<Alert> {
        std::mem::take(&mut self.lock().alerts)
    }
}

impl Bus for LocalBus {
    async fn publish_alert(&self, alert: &Alert) -> Result<(), BusError> {
        self.lock().alerts.push(alert.clone());
        Ok(())
    }

    async fn publish_delivery(&self, job: &DeliveryJob) -> Result<(), BusError> {
        self.lock().deliveries.push(job.clone());
        Ok(())
    }
}
