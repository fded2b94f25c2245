//! Lambda entry point of the stream-driven `notify` function: wiring only.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    messenger_aws::lambda::run_stream(fn_notify::handle).await
}
