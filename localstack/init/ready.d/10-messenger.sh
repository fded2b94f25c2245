#!/usr/bin/env bash
# LocalStack init hook (ready stage): creates the artifact bucket infra/deploy uploads the
# function zips and the template to, and says what to run next. infra/deploy would create the
# bucket itself; doing it here makes a fresh container ready for `aws s3 cp` by hand too.
set -euo pipefail
awslocal s3api head-bucket --bucket messenger-artifacts 2>/dev/null \
    || awslocal s3 mb s3://messenger-artifacts
echo "messenger: LocalStack ready; deploy with: infra/deploy --target local --lambda-build"
