//! Infrastructure layer: counts DynamoDB requests and consumed capacity, per operation.

use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemOutput, delete_item::DeleteItemOutput, get_item::GetItemOutput,
    put_item::PutItemOutput, query::QueryOutput, transact_write_items::TransactWriteItemsOutput,
    update_item::UpdateItemOutput,
};
use aws_sdk_dynamodb::types::ConsumedCapacity;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Requests and capacity units of one DynamoDB operation (e.g. `Query`).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct OpStats {
    /// HTTP requests sent (retries count: each one is billed).
    pub requests: u64,
    /// Read capacity units reported by `ReturnConsumedCapacity=TOTAL`.
    pub read_units: f64,
    /// Write capacity units reported by `ReturnConsumedCapacity=TOTAL`.
    pub write_units: f64,
}

/// Counters per operation name at one instant; diff two with [`Snapshot::since`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot(pub BTreeMap<String, OpStats>);

impl Snapshot {
    /// What happened between `earlier` and this snapshot (operations with no requests dropped).
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let mut out = BTreeMap::new();
        for (op, now) in &self.0 {
            let before = earlier.0.get(op).copied().unwrap_or_default();
            let d = OpStats {
                requests: now.requests - before.requests,
                read_units: now.read_units - before.read_units,
                write_units: now.write_units - before.write_units,
            };
            if d.requests > 0 {
                out.insert(op.clone(), d);
            }
        }
        Snapshot(out)
    }

    /// Requests per operation, e.g. `[("GetItem", 1), ("Query", 2)]`.
    pub fn requests(&self) -> BTreeMap<&str, u64> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_str(), v.requests))
            .collect()
    }

    /// All requests.
    pub fn total_requests(&self) -> u64 {
        self.0.values().map(|s| s.requests).sum()
    }

    /// All read capacity units.
    pub fn read_units(&self) -> f64 {
        self.0.values().map(|s| s.read_units).sum()
    }

    /// All write capacity units.
    pub fn write_units(&self) -> f64 {
        self.0.values().map(|s| s.write_units).sum()
    }
}

/// The shared counters a [`CountingInterceptor`] writes to.
#[derive(Debug, Default)]
pub struct Counters(Mutex<BTreeMap<String, OpStats>>);

impl Counters {
    /// A copy of the counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.lock().clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OpStats>> {
        // Counters are plain numbers: a panic elsewhere cannot leave them inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with(&self, op: &str, f: impl FnOnce(&mut OpStats)) {
        f(self.lock().entry(op.to_owned()).or_default());
    }
}

/// An SDK interceptor that counts each request as it is transmitted, and sums the
/// `ConsumedCapacity` of each successful response.
#[derive(Debug, Clone)]
pub struct CountingInterceptor(pub Arc<Counters>);

fn op_name(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map_or_else(|| "unknown".into(), |m| m.name().to_owned())
}

const READ_OPS: &[&str] = &[
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
];

impl Intercept for CountingInterceptor {
    fn name(&self) -> &'static str {
        "CountingInterceptor"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.with(&op_name(cfg), |s| s.requests += 1);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(out) = context.output_or_error() else {
            return Ok(());
        };
        let caps: Vec<&ConsumedCapacity> = if let Some(o) = out.downcast_ref::<GetItemOutput>() {
            o.consumed_capacity().into_iter().collect()
        } else if let Some(o) = out.downcast_ref::<QueryOutput>() {
            o.consumed_capacity().into_iter().collect()
        } else if let Some(o) = out.downcast_ref::<BatchGetItemOutput>() {
            o.consumed_capacity().iter().collect()
        } else if let Some(o) = out.downcast_ref::<PutItemOutput>() {
            o.consumed_capacity().into_iter().collect()
        } else if let Some(o) = out.downcast_ref::<UpdateItemOutput>() {
            o.consumed_capacity().into_iter().collect()
        } else if let Some(o) = out.downcast_ref::<DeleteItemOutput>() {
            o.consumed_capacity().into_iter().collect()
        } else if let Some(o) = out.downcast_ref::<TransactWriteItemsOutput>() {
            o.consumed_capacity().iter().collect()
        } else {
            Vec::new()
        };
        let op = op_name(cfg);
        let is_read = READ_OPS.contains(&op.as_str());
        self.0.with(&op, |s| {
            for c in caps {
                // AWS splits reads and writes only for some calls; the total is always there.
                match (c.read_capacity_units(), c.write_capacity_units()) {
                    (None, None) if is_read => s.read_units += c.capacity_units().unwrap_or(0.0),
                    (None, None) => s.write_units += c.capacity_units().unwrap_or(0.0),
                    (r, w) => {
                        s.read_units += r.unwrap_or(0.0);
                        s.write_units += w.unwrap_or(0.0);
                    }
                }
            }
        });
        Ok(())
    }
}
