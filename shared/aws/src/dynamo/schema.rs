//! Adapter layer: the tables' key schemas, created on demand for tests and local set-ups
//! (deployments create them from `infra/template.yaml`, which must say the same).

use super::{DynamoStore, USER, backend, codec, devices, memberships, messages, presence};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::create_table::{CreateTableError, CreateTableOutput};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use messenger::ports::StoreError;
use std::time::Duration;

/// Whether CreateTable made the table: `false` when it already existed (so `create_tables`
/// can run against a set-up that has some or all of them).
fn created(
    r: Result<
        CreateTableOutput,
        SdkError<CreateTableError, aws_smithy_runtime_api::http::Response>,
    >,
) -> Result<bool, StoreError> {
    match r {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(backend(e)),
    }
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(backend)
}

fn attr(name: &str, ty: ScalarAttributeType) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ty)
        .build()
        .map_err(backend)
}

impl DynamoStore {
    /// Creates the four tables (on-demand, TTL on `ttl` where items expire) unless they exist,
    /// and waits until they are active. For tests and local set-up; deployments create them
    /// from the template.
    pub async fn create_tables(&self) -> Result<(), StoreError> {
        let t = &self.tables;
        let specs = [
            (
                &t.memberships,
                USER,
                memberships::CONV,
                ScalarAttributeType::S,
                false,
            ),
            (
                &t.messages,
                messages::PK,
                messages::SK,
                ScalarAttributeType::N,
                true,
            ),
            (&t.devices, USER, devices::SK, ScalarAttributeType::S, true),
        ];
        for (table, pk, sk, sk_type, with_ttl) in specs {
            let mut req = self
                .client
                .create_table()
                .table_name(table.as_str())
                .billing_mode(BillingMode::PayPerRequest)
                .key_schema(key(pk, KeyType::Hash)?)
                .key_schema(key(sk, KeyType::Range)?)
                .attribute_definitions(attr(pk, ScalarAttributeType::S)?)
                .attribute_definitions(attr(sk, sk_type)?);
            if table == &t.memberships {
                req = req.global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(memberships::BY_CONVERSATION)
                        .key_schema(key(memberships::CONV, KeyType::Hash)?)
                        .key_schema(key(USER, KeyType::Range)?)
                        // What the member list shows; pointer updates (acks) never touch the
                        // index, so they cost no index writes.
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::Include)
                                .set_non_key_attributes(Some(
                                    memberships::MEMBER_LIST.map(String::from).to_vec(),
                                ))
                                .build(),
                        )
                        .build()
                        .map_err(backend)?,
                );
            }
            if !created(req.send().await)? {
                continue;
            }
            self.wait_active(table).await?;
            if with_ttl {
                self.enable_ttl(table).await?;
            }
        }
        // One item per user that must outlive its connections (last-seen): no TTL.
        let presence = self
            .client
            .create_table()
            .table_name(&t.presence)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(presence::PK, KeyType::Hash)?)
            .attribute_definitions(attr(presence::PK, ScalarAttributeType::S)?)
            .send()
            .await;
        if created(presence)? {
            self.wait_active(&t.presence).await?;
        }
        Ok(())
    }

    async fn wait_active(&self, table: &str) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::client::Waiters;
        self.client
            .wait_until_table_exists()
            .table_name(table)
            .wait(Duration::from_secs(120))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn enable_ttl(&self, table: &str) -> Result<(), StoreError> {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(codec::TTL_ATTR)
            .enabled(true)
            .build()
            .map_err(backend)?;
        self.client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
