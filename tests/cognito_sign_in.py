"""Creates users in a Cognito user pool and signs each in; prints their tokens as JSON.

Used by the deployed-stack tests (tests/src/deployed.rs) against the stack's own user pool on
MiniStack, with infra/.venv's boto3:
    cognito_sign_in.py ENDPOINT REGION POOL_ID CLIENT_ID EMAIL...
prints {"<email>": {"sub": ..., "id_token": ..., "access_token": ...}, ...}. Admin calls, as an
operator's script would make them; the app client allows ADMIN_USER_PASSWORD_AUTH for that.
"""

import base64
import json
import sys

import boto3

endpoint, region, pool, client, *emails = sys.argv[1:]
idp = boto3.client(
    "cognito-idp",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
password = "Correct-Horse-Battery-9"
out = {}
for email in emails:
    idp.admin_create_user(
        UserPoolId=pool,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    idp.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
    tokens = idp.admin_initiate_auth(
        UserPoolId=pool,
        ClientId=client,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )["AuthenticationResult"]
    payload = tokens["IdToken"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    out[email] = {
        "sub": claims["sub"],
        "id_token": tokens["IdToken"],
        "access_token": tokens["AccessToken"],
    }
json.dump(out, sys.stdout)
