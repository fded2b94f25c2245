"""Builds the Lambda zips, uploads them and deploys infra/template.yaml (run it as infra/deploy).

Targets:
  aws    cargo-lambda cross-builds arm64 release binaries; a per-account artifact bucket is
         created (or reused); the stack is created or updated with boto3 (credentials, region
         and profile come from the usual AWS environment / ~/.aws files).
  local  any LocalStack-compatible endpoint (default MiniStack at http://127.0.0.1:4566). The
         zips hold host binaries (the debug build that `cargo test --workspace` already made,
         unless --release); the stack gets EmulatorEndpoint so the functions reach the
         emulator's @connections API; sign-in defaults to development tokens with
         messenger-local's secret, so `cargo run -q -p messenger-local -- token USER` mints them.

Sign-in (--identity, the template's Identity): cognito (a user pool and app client in the stack;
the default on AWS), issuer (any OpenID Connect issuer: --param IssuerUrl=... --param
IssuerAudience=...), hs256 (development tokens signed with --jwt-secret; the default locally).

Idempotent: an existing stack is updated (or left alone when nothing changed); zips are
content-addressed, so only changed functions get new code. --destroy deletes the stack.

Every S3 call names the account the bucket must belong to (ExpectedBucketOwner): a bucket of
that name owned by anyone else is refused, never written to. messenger-local's public
development secret is refused for AWS (as the template's Rules refuse it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
ZIP_DIR = ROOT / "target" / "lambda-zips"

# (crate name, template parameter holding its S3 key). Every crate is functions/<name>, package
# and binary fn-<name>.
FUNCTIONS = [
    ("connect", "ConnectCodeKey"),
    ("disconnect", "DisconnectCodeKey"),
    ("default", "DefaultCodeKey"),
    ("send", "SendCodeKey"),
    ("ack", "AckCodeKey"),
    ("sync", "SyncCodeKey"),
    ("presence", "PresenceCodeKey"),
    ("groups", "GroupsCodeKey"),
    ("devices", "DevicesCodeKey"),
    ("notify", "NotifyCodeKey"),
    ("authorizer", "AuthorizerCodeKey"),
]

# messenger::auth::DEV_SECRET: what `messenger-local token` signs with when
# MESSENGER_JWT_SECRET is unset. Only ever used for --target local.
DEV_SECRET = "messenger-local-development-secret"

TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def detail(msg: str) -> None:
    print(f"    {msg}", flush=True)


def fail(msg: str) -> "NoReturn":  # noqa: F821 (string annotation)
    print(f"deploy: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# --------------------------------------------------------------------------- build


def host_architecture() -> str:
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


def run(cmd: list[str], **kw) -> None:
    detail("$ " + " ".join(cmd))
    if subprocess.run(cmd, cwd=ROOT, **kw).returncode != 0:
        fail(f"command failed: {' '.join(cmd)}")


def build_host(release: bool) -> Path:
    """Host binaries for an emulator. `--workspace --bins` resolves features exactly as
    `cargo test --workspace` does, so after the test suite this is a no-op, not a rebuild."""
    cmd = ["cargo", "build", "--locked", "--workspace", "--bins"]
    if release:
        cmd.append("--release")
    say("building host binaries" + (" (release)" if release else " (debug)"))
    run(cmd)
    return ROOT / "target" / ("release" if release else "debug")


def build_lambda(venv_bin: Path, arch: str) -> Path:
    """Release binaries for Lambda's provided.al2023 with cargo-lambda (from PyPI, brings zig,
    which links against an old glibc so the binaries run in the Lambda image)."""
    cargo_lambda = venv_bin / "cargo-lambda"
    if not cargo_lambda.exists():
        fail(f"{cargo_lambda} missing: infra/deploy installs it for --target aws and --lambda-build")
    say(f"building {arch} release binaries with cargo-lambda (slow the first time: ~15 min cold)")
    env = dict(os.environ)
    # cargo finds the `cargo-lambda` subcommand on PATH; zig (pip's ziglang) sits next to it.
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    cmd = ["cargo", "lambda", "build", "--release", "--arm64" if arch == "arm64" else "--x86-64", "--locked"]
    for name, _ in FUNCTIONS:
        cmd += ["-p", f"fn-{name}"]
    run(cmd, env=env)
    # cargo-lambda leaves each binary under target/lambda/<binary>/bootstrap.
    return ROOT / "target" / "lambda"


def binary_path(bin_dir: Path, name: str) -> Path:
    lambda_layout = bin_dir / f"fn-{name}" / "bootstrap"
    if lambda_layout.exists():
        return lambda_layout
    return bin_dir / f"fn-{name}"


def package(bin_dir: Path) -> dict[str, Path]:
    """One zip per function, `bootstrap` inside (executable), named by the binary's hash."""
    say(f"packaging zips from {bin_dir.relative_to(ROOT) if bin_dir.is_relative_to(ROOT) else bin_dir}")
    ZIP_DIR.mkdir(parents=True, exist_ok=True)
    zips = {}
    for name, _ in FUNCTIONS:
        binary = binary_path(bin_dir, name)
        if not binary.is_file():
            fail(f"{binary} not found: build first (or drop --binaries)")
        digest = hashlib.sha256(binary.read_bytes()).hexdigest()[:20]
        out = ZIP_DIR / f"fn-{name}-{digest}.zip"
        if not out.exists():
            # Per process: two deploys packaging the same binaries at once (the deploy tier's two
            # stacks) must not write one temporary file; the rename is atomic either way.
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16  # regular file, rwxr-xr-x
            info.compress_type = zipfile.ZIP_DEFLATED
            with zipfile.ZipFile(tmp, "w", compresslevel=1) as zf:
                zf.writestr(info, binary.read_bytes())
            tmp.replace(out)
        zips[name] = out
        detail(f"{out.name}  {out.stat().st_size / 1e6:.1f} MB")
    return zips


# --------------------------------------------------------------------------- AWS side


class Target:
    """Clients and defaults of one deployment target."""

    def __init__(self, args: argparse.Namespace):
        self.kind = args.target
        cfg = Config(retries={"max_attempts": 10, "mode": "standard"})
        if self.kind == "local":
            self.endpoint = args.endpoint.rstrip("/")
            self.session = boto3.Session(
                aws_access_key_id="test",
                aws_secret_access_key="test",
                region_name=args.region or "us-east-1",
            )
            kw = {"endpoint_url": self.endpoint, "config": cfg}
        else:
            self.endpoint = None
            self.session = boto3.Session(region_name=args.region) if args.region else boto3.Session()
            if not self.session.region_name:
                fail("no AWS region: pass --region or set AWS_REGION / a profile region")
            kw = {"config": cfg}
        self.region = self.session.region_name
        self.cfn = self.session.client("cloudformation", **kw)
        self.s3 = self.session.client("s3", **kw)
        self.sts = self.session.client("sts", **kw)
        self.apigw = self.session.client("apigateway", **kw)
        self._account: str | None = None

    @property
    def account(self) -> str:
        """The account of the credentials: the one every S3 call expects to own the bucket."""
        if self._account is None:
            self._account = self.sts.get_caller_identity()["Account"]
        return self._account

    def bucket_name(self, override: str | None) -> str:
        if override:
            return override
        if self.kind == "local":
            return "messenger-artifacts"
        return f"messenger-artifacts-{self.account}-{self.region}"

    def access_logs_possible(self) -> bool:
        """Whether API Gateway's account-wide CloudWatch role is set (access logs need it)."""
        if self.kind == "local":
            return True
        try:
            return bool(self.apigw.get_account().get("cloudwatchRoleArn"))
        except botocore.exceptions.ClientError as e:
            detail(f"cannot read API Gateway's account settings ({e}): access logs off")
            return False


def ensure_bucket(t: Target, bucket: str) -> None:
    owner = t.account
    try:
        t.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
        detail(f"bucket s3://{bucket} exists (account {owner})")
        return
    except botocore.exceptions.ClientError as e:
        code = e.response["Error"]["Code"]
        if code in ("403", "AccessDenied", "Forbidden"):
            fail(f"bucket s3://{bucket} exists but does not belong to account {owner} (or is not "
                 "readable by it): refusing to upload code and templates into it; pass --bucket NAME "
                 "with a bucket of this account")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    say(f"creating bucket s3://{bucket}")
    kw = {"Bucket": bucket}
    if t.region != "us-east-1":
        kw["CreateBucketConfiguration"] = {"LocationConstraint": t.region}
    try:
        # CreateBucket has no ExpectedBucketOwner: a name another account took fails here with
        # BucketAlreadyExists, and every later call checks the owner.
        t.s3.create_bucket(**kw)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "BucketAlreadyExists":
            fail(f"the bucket name {bucket} belongs to another account: pass --bucket NAME")
        raise
    if t.kind == "aws":
        # Private, encrypted, and old code versions expire: the bucket only feeds deployments.
        t.s3.put_public_access_block(
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        t.s3.put_bucket_encryption(
            Bucket=bucket,
            ExpectedBucketOwner=owner,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )


def upload(t: Target, bucket: str, stack: str, zips: dict[str, Path]) -> dict[str, str]:
    say(f"uploading to s3://{bucket}/{stack}/")
    keys = {}
    for name, path in zips.items():
        key = f"{stack}/{path.name}"
        try:
            t.s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=t.account)
            detail(f"{key} (already there)")
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
            # A single PutObject (the zips are a few MB): one call, with the owner check.
            t.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ExpectedBucketOwner=t.account)
            detail(f"{key} uploaded")
        keys[name] = key
    return keys


def upload_template(t: Target, bucket: str, stack: str) -> str:
    body = TEMPLATE.read_bytes()
    key = f"{stack}/template-{hashlib.sha256(body).hexdigest()[:20]}.yaml"
    t.s3.put_object(Bucket=bucket, Key=key, Body=body, ExpectedBucketOwner=t.account)
    if t.kind == "local":
        return f"{t.endpoint}/{bucket}/{key}"
    return f"https://{bucket}.s3.{t.region}.{'amazonaws.com.cn' if t.region.startswith('cn-') else 'amazonaws.com'}/{key}"


def describe(t: Target, stack: str) -> dict | None:
    try:
        return t.cfn.describe_stacks(StackName=stack)["Stacks"][0]
    except botocore.exceptions.ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def wait(t: Target, stack: str, since: float, poll: float) -> dict | None:
    """Prints the stack's events as they come until it settles; returns the final stack."""
    seen: set[str] = set()
    while True:
        try:
            events = t.cfn.describe_stack_events(StackName=stack)["StackEvents"]
        except botocore.exceptions.ClientError as e:
            if "does not exist" in str(e):
                return None
            raise
        for ev in reversed(events):
            ts = ev["Timestamp"].timestamp()
            if ev["EventId"] in seen or ts < since - 1:
                continue
            seen.add(ev["EventId"])
            reason = ev.get("ResourceStatusReason") or ""
            detail(f"{ev['ResourceStatus']:<28} {ev['LogicalResourceId']:<32} {reason}".rstrip())
        s = describe(t, stack)
        if s is None:
            return None
        status = s["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            return s
        time.sleep(poll)


def parameters(args: argparse.Namespace, t: Target, bucket: str, keys: dict[str, str], existing: dict | None) -> list[dict]:
    params: dict[str, str] = {"ArtifactBucket": bucket, "StageName": args.stage}
    for name, param in FUNCTIONS:
        params[param] = keys[name]
    secret = args.jwt_secret or os.environ.get("MESSENGER_JWT_SECRET")
    identity = identity_of(args, t, existing, secret)
    params["Identity"] = identity
    # Access logs need API Gateway's account-wide CloudWatch role: on when it is set (this stack
    # never replaces it unless told: --param ConfigureApiGatewayLogging=true).
    params["AccessLogging"] = "true" if t.access_logs_possible() else "false"
    if params["AccessLogging"] == "false":
        detail("access logs off: this account has no API Gateway CloudWatch role "
               "(--param ConfigureApiGatewayLogging=true creates one for the whole account and region)")
    if t.kind == "local":
        params["EmulatorEndpoint"] = t.endpoint
        # MiniStack runs the binaries as host processes; LocalStack in containers of the host's
        # architecture. Either way: the host's.
        params["Architecture"] = host_architecture()
        # A throwaway local stack: tables (and the user pool) go with it.
        params["TableDeletionProtection"] = "false"
        if identity == "hs256":
            params["JwtSecret"] = secret or DEV_SECRET
    else:
        params["Architecture"] = "arm64"
        if identity == "hs256":
            if secret:
                params["JwtSecret"] = secret
            elif existing is None or existing_param(existing, "JwtSecret") is None:
                fail("--identity hs256 needs the JWT secret the first time: --jwt-secret or MESSENGER_JWT_SECRET "
                     "(at least 32 characters, e.g. `openssl rand -base64 48`)")
    for kv in args.param:
        k, sep, v = kv.partition("=")
        if not sep:
            fail(f"--param {kv!r}: expected NAME=VALUE")
        params[k] = v
    out = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
    if existing is not None:
        # Keep what a previous deploy set and this one does not (the JWT secret above all).
        declared = {p["ParameterKey"] for p in existing.get("Parameters", [])}
        out += [{"ParameterKey": k, "UsePreviousValue": True} for k in sorted(declared - params.keys())]
    return out


def existing_param(existing: dict | None, key: str) -> str | None:
    for p in (existing or {}).get("Parameters", []):
        if p["ParameterKey"] == key:
            return p.get("ParameterValue")
    return None


def refuse_development_secret(args: argparse.Namespace) -> None:
    """Before anything else: AWS never gets messenger-local's public development secret."""
    secret = args.jwt_secret or os.environ.get("MESSENGER_JWT_SECRET")
    given = [kv.partition("=")[2] for kv in args.param if kv.partition("=")[0] == "JwtSecret"]
    if args.target == "aws" and DEV_SECRET in [secret, *given]:
        fail("the JWT secret is messenger-local's public development secret: with it anyone can sign "
             "in as anyone. Use a secret of your own (--jwt-secret \"$(openssl rand -base64 48)\"), "
             "or sign in with an identity provider (--identity cognito, the default)")


def identity_of(args: argparse.Namespace, t: Target, existing: dict | None, secret: str | None) -> str:
    """The stack's sign-in: --identity; else hs256 when a JWT secret is given; else what the
    existing stack has (a stack from before the Identity parameter signed in with its secret);
    else development tokens locally and the stack's own Cognito user pool on AWS."""
    if args.identity:
        return args.identity
    if secret:
        return "hs256"
    if existing is not None:
        previous = existing_param(existing, "Identity")
        if previous:
            return previous
        if existing_param(existing, "JwtSecret") is not None:
            return "hs256"
    return "hs256" if t.kind == "local" else "cognito"


def deploy_stack(args: argparse.Namespace, t: Target, bucket: str, keys: dict[str, str]) -> dict:
    stack = args.stack_name
    existing = describe(t, stack)
    if existing and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        say(f"stack {stack} is {existing['StackStatus']} (a failed first create): deleting it first")
        since = time.time()
        t.cfn.delete_stack(StackName=stack)
        wait(t, stack, since, args.poll)
        existing = None
    params = parameters(args, t, bucket, keys, existing)
    common = {
        "StackName": stack,
        # Past TemplateBody's 51,200 bytes: the template goes through the artifact bucket.
        "TemplateURL": upload_template(t, bucket, stack),
        "Parameters": params,
        # The roles have generated names: CAPABILITY_IAM, not CAPABILITY_NAMED_IAM.
        "Capabilities": ["CAPABILITY_IAM"],
        "Tags": [{"Key": "project", "Value": "messenger"}],
    }
    since = time.time()
    if existing is None:
        say(f"creating stack {stack} ({t.kind}, region {t.region})")
        t.cfn.create_stack(OnFailure="ROLLBACK", **common)
    else:
        say(f"updating stack {stack} ({t.kind}, region {t.region})")
        try:
            t.cfn.update_stack(**common)
        except botocore.exceptions.ClientError as e:
            if "No updates are to be performed" in str(e):
                detail("no changes")
                return existing
            raise
    final = wait(t, stack, since, args.poll)
    if final is None or final["StackStatus"] not in TERMINAL_OK:
        status = final["StackStatus"] if final else "gone"
        fail(f"stack {stack} ended {status}; the events above say why")
    return final


def destroy(args: argparse.Namespace, t: Target) -> None:
    stack = args.stack_name
    existing = describe(t, stack)
    if existing is None:
        say(f"stack {stack} does not exist: nothing to do")
        return
    outputs = {o["OutputKey"]: o["OutputValue"] for o in existing.get("Outputs", [])}
    say(f"deleting stack {stack}")
    since = time.time()
    t.cfn.delete_stack(StackName=stack)
    final = wait(t, stack, since, args.poll)
    if final is not None and final["StackStatus"] != "DELETE_COMPLETE":
        fail(f"stack {stack} ended {final['StackStatus']}")
    say(f"stack {stack} deleted")
    kept = [v for k, v in sorted(outputs.items()) if k.endswith("TableName")]
    if "UserPoolId" in outputs:
        detail(f"the Cognito user pool {outputs['UserPoolId']} (the accounts) is retained (DeletionPolicy: Retain);")
        detail("  aws cognito-idp update-user-pool --user-pool-id ID --deletion-protection INACTIVE, then delete-user-pool")
    if kept:
        detail("the data tables are retained (DeletionPolicy: Retain):")
        for table in kept:
            detail(f"  {table}")
        if t.kind == "local":
            detail("on MiniStack `localstack/ministack reset` drops them (and everything else)")
        else:
            detail("to delete one for good (this destroys its data; deletion protection is on by default):")
            detail("  aws dynamodb update-table --table-name NAME --no-deletion-protection-enabled")
            detail("  aws dynamodb delete-table --table-name NAME")
    detail(f"artifacts stay in s3://{t.bucket_name(args.bucket)}/{stack}/ (delete with `aws s3 rm --recursive`)")


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(prog="infra/deploy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", choices=["aws", "local"], required=True)
    p.add_argument("--endpoint", default=os.environ.get("MESSENGER_EMULATOR_ENDPOINT", "http://127.0.0.1:4566"),
                   help="local: the emulator's URL (default $MESSENGER_EMULATOR_ENDPOINT or http://127.0.0.1:4566)")
    p.add_argument("--region", help="default: the AWS environment's region; local: us-east-1")
    p.add_argument("--stack-name", default="messenger")
    p.add_argument("--stage", default="prod", help="API stage name (default prod)")
    p.add_argument("--identity", choices=["cognito", "issuer", "hs256"],
                   help="who signs users in (default: hs256 with --jwt-secret; else the existing stack's; "
                        "else hs256 locally, cognito on AWS). issuer needs --param IssuerUrl=... --param IssuerAudience=...")
    p.add_argument("--jwt-secret", help="hs256 token secret (default $MESSENGER_JWT_SECRET; local: the development secret)")
    p.add_argument("--bucket", help="artifact bucket (default messenger-artifacts[-ACCOUNT-REGION])")
    p.add_argument("--binaries", type=Path, help="use the binaries in this directory (fn-<name> or fn-<name>/bootstrap); no build")
    p.add_argument("--release", action="store_true", help="local: build and ship release binaries")
    p.add_argument("--lambda-build", action="store_true",
                   help="local: build with cargo-lambda for the host architecture (for LocalStack, whose Lambdas run in containers)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="template parameter override (repeatable)")
    p.add_argument("--outputs-json", type=Path, help="also write the stack outputs to this file as JSON")
    p.add_argument("--poll", type=float, default=None, help="seconds between status polls (default 1 local, 5 aws)")
    p.add_argument("--destroy", action="store_true", help="delete the stack instead")
    args = p.parse_args()
    if args.poll is None:
        args.poll = 1.0 if args.target == "local" else 5.0
    refuse_development_secret(args)

    t = Target(args)
    if args.destroy:
        destroy(args, t)
        return

    started = time.time()
    # Credentials and account first: a missing profile should not cost a 15-minute build.
    bucket = t.bucket_name(args.bucket)
    if args.binaries:
        bin_dir = args.binaries.resolve()
    elif args.target == "local" and not args.lambda_build:
        bin_dir = build_host(args.release)
    else:
        arch = "arm64" if args.target == "aws" else host_architecture()
        bin_dir = build_lambda(Path(sys.executable).parent, arch)
    zips = package(bin_dir)
    ensure_bucket(t, bucket)
    keys = upload(t, bucket, args.stack_name, zips)
    final = deploy_stack(args, t, bucket, keys)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in final.get("Outputs", [])}
    if args.outputs_json:
        args.outputs_json.write_text(json.dumps(outputs, indent=2) + "\n")
    say(f"stack {args.stack_name} is {final['StackStatus']} ({time.time() - started:.0f} s)")
    for k in sorted(outputs):
        detail(f"{k:<22} {outputs[k]}")
    url = outputs.get("WebSocketUrl", "<WebSocketUrl>")
    identity = outputs.get("Identity", "hs256")
    print()
    if identity == "cognito":
        pool, client = outputs.get("UserPoolId"), outputs.get("UserPoolClientId")
        print("Sign in with the user pool (README \"Sign-in\"); e.g. an ID token for a user you created:")
        print(f"  aws cognito-idp admin-initiate-auth --user-pool-id {pool} --client-id {client} \\")
        print("    --auth-flow ADMIN_USER_PASSWORD_AUTH --auth-parameters USERNAME=<email>,PASSWORD=<password>")
        print(f'  npx wscat -c "{url}?token=<IdToken or AccessToken>&device=phone"')
    elif identity == "issuer":
        print(f"Connect with a token of {outputs.get('Issuer')}:")
        print(f'  npx wscat -c "{url}?token=<ID or access token>&device=phone"')
    else:
        print("Connect (a token per user; --device names the device):")
        if args.target == "local" and not (args.jwt_secret or os.environ.get("MESSENGER_JWT_SECRET")):
            print(f'  npx wscat -c "{url}?token=$(cargo run -q -p messenger-local -- token alice)"')
        else:
            print("  export MESSENGER_JWT_SECRET=<the secret you deployed with>")
            print(f'  npx wscat -c "{url}?token=$(cargo run -q -p messenger-local -- token alice)"')


if __name__ == "__main__":
    try:
        main()
    except botocore.exceptions.NoCredentialsError:
        fail("no AWS credentials: configure a profile (aws configure / AWS_PROFILE) or export AWS_ACCESS_KEY_ID/...")
    except botocore.exceptions.ClientError as e:
        fail(str(e)[:2000])
