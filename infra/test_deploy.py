"""Tests of infra/deploy.py that need no cloud: the development secret is refused for AWS, and
every S3 call names the account that must own the bucket (run by tests/run.sh's deploy tier:
infra/.venv/bin/python -m unittest discover -s infra -p 'test_*.py')."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import types
import unittest
from pathlib import Path

import boto3
from botocore.stub import Stubber

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy  # noqa: E402

ACCOUNT = "123456789012"


def run_deploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MESSENGER_JWT_SECRET"}
    # No credentials anywhere, and never the instance metadata service: nothing leaves the machine.
    clean.update({"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                  "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, str(Path(deploy.__file__)), *args],
        capture_output=True, text=True, env=clean, timeout=60,
    )


class DevelopmentSecret(unittest.TestCase):
    def test_aws_refuses_the_development_secret_however_it_is_given(self):
        dev = deploy.DEV_SECRET
        for args, env in [
            (["--jwt-secret", dev], None),
            (["--param", f"JwtSecret={dev}"], None),
            ([], {"MESSENGER_JWT_SECRET": dev}),
        ]:
            out = run_deploy("--target", "aws", "--region", "eu-west-1", *args, env=env)
            self.assertEqual(out.returncode, 1, out)
            self.assertIn("public development secret", out.stderr, out)

    def test_another_secret_gets_past_the_check(self):
        # Without credentials it stops at the account lookup instead: the check let it through.
        out = run_deploy("--target", "aws", "--region", "eu-west-1", "--jwt-secret", "x" * 40)
        self.assertEqual(out.returncode, 1, out)
        self.assertNotIn("public development secret", out.stderr, out)
        self.assertIn("no AWS credentials", out.stderr, out)


class ExpectedBucketOwner(unittest.TestCase):
    def setUp(self):
        self.s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x",
                               aws_secret_access_key="x")
        self.calls: list[tuple[str, dict]] = []

        def record(params, model, **_):
            self.calls.append((model.name, dict(params)))

        self.s3.meta.events.register("provide-client-params.s3.*", record)
        self.stub = Stubber(self.s3)
        self.stub.activate()
        self.target = types.SimpleNamespace(kind="aws", region="eu-west-1", account=ACCOUNT,
                                            s3=self.s3, endpoint=None)

    def tearDown(self):
        self.stub.deactivate()

    def owned(self, params: dict) -> dict:
        return {**params, "ExpectedBucketOwner": ACCOUNT}

    def test_creating_the_bucket_and_uploading_name_the_owner_on_every_call(self):
        b = "messenger-artifacts-test"
        self.stub.add_client_error("head_bucket", "404", expected_params=self.owned({"Bucket": b}))
        self.stub.add_response("create_bucket", {}, {
            "Bucket": b, "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}})
        self.stub.add_response("put_public_access_block", {}, None)
        self.stub.add_response("put_bucket_encryption", {}, None)
        self.stub.add_client_error("head_object", "404")
        self.stub.add_response("put_object", {}, None)
        self.stub.add_response("put_object", {}, None)
        with tempfile.TemporaryDirectory() as d:
            zipped = Path(d) / "fn-send-abc.zip"
            zipped.write_bytes(b"zip")
            deploy.ensure_bucket(self.target, b)
            keys = deploy.upload(self.target, b, "stack", {"send": zipped})
            deploy.upload_template(self.target, b, "stack")
        self.stub.assert_no_pending_responses()
        self.assertEqual(keys, {"send": "stack/fn-send-abc.zip"})
        names = [name for name, _ in self.calls]
        self.assertEqual(names, ["HeadBucket", "CreateBucket", "PutPublicAccessBlock",
                                 "PutBucketEncryption", "HeadObject", "PutObject", "PutObject"])
        for name, params in self.calls:
            if name == "CreateBucket":
                continue  # no such parameter: a name another account holds fails with BucketAlreadyExists
            self.assertEqual(params.get("ExpectedBucketOwner"), ACCOUNT, name)

    def test_a_bucket_of_another_account_is_refused(self):
        self.stub.add_client_error("head_bucket", "403", http_status_code=403)
        with self.assertRaises(SystemExit) as refused:
            deploy.ensure_bucket(self.target, "messenger-artifacts-taken")
        self.assertEqual(refused.exception.code, 1)
        self.assertEqual([name for name, _ in self.calls], ["HeadBucket"], "nothing written")

    def test_a_name_another_account_holds_is_refused_at_creation(self):
        self.stub.add_client_error("head_bucket", "404")
        self.stub.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)
        with self.assertRaises(SystemExit):
            deploy.ensure_bucket(self.target, "messenger-artifacts-taken")


if __name__ == "__main__":
    unittest.main()
