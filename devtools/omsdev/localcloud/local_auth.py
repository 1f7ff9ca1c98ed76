"""The local cloud's stand-in for the template's Cognito user pools: ID tokens and their validation.

- One RSA key pair per local stack signs the ID tokens of every user pool of that stack. It lives in
  a Secrets Manager secret on the stack's endpoint (`{stack}-LocalCognitoSigningKey`, created at first
  use), so `oms local token` in another process signs with the key the running `oms local up` checks.
- `issue_token(cloud_or_stack, role)` returns what Cognito hands a signed-in user of that group: an
  RS256 ID token with `kid`, `iss` (https://cognito-idp.<region>.amazonaws.com/<pool id>), `aud` (the
  app client id), `token_use` "id", `cognito:username`, `email`, `cognito:groups`, `exp`, `iat`,
  `auth_time`, `sub`. A pool whose UsernameAttributes include email has the user's `sub` as
  `cognito:username`, as Cognito does.
- `verify_token` (or a `CognitoVerifier` built once) checks a token as API Gateway's Cognito user pool
  authorizer does: signature against the pool's key, issuer one of the authorizer's pools, `aud` one of
  that pool's app clients, `token_use` id, not expired; a refusal is a `TokenRejectedError` whose message
  is API Gateway's 401 message. `rest_claims` turns the claims into what a REST API passes the function
  in `requestContext.authorizer.claims`: every value a string, a list joined with commas
  ("reviewer,admin"), `exp` and `iat` as dates ("Tue Apr 04 18:39:39 UTC 2023").
Developer tooling only: never imported by code under layers/ or functions/.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from omsdev.localcloud.provision import physical_name

USER_POOL, USER_POOL_CLIENT, USER_POOL_GROUP = (
    "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::Cognito::UserPoolGroup")
KEY_SECRET_LOGICAL_ID = "LocalCognitoSigningKey"
UNAUTHORIZED = "Unauthorized"
EXPIRED = "The incoming token has expired"
_DATE_CLAIMS = ("exp", "iat")  # API Gateway REST passes these two as dates, auth_time as a number
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class LocalAuthError(ValueError):
    """The stack cannot issue or check tokens as asked (no such pool, client or group); the message says why."""


class TokenRejectedError(ValueError):
    """API Gateway's Cognito authorizer refuses the token; the message is its 401 message."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()


@dataclass(frozen=True)
class UserPool:
    """One AWS::Cognito::UserPool of the stack, with its app clients and groups."""

    logical_id: str
    pool_id: str
    arn: str
    issuer: str
    client_ids: tuple[str, ...]
    groups: tuple[str, ...]
    email_is_username: bool


# -- the stack's key ---------------------------------------------------------------------------------

_keys: dict[tuple[str, str], SigningKey] = {}
_keys_lock = threading.Lock()


def _stack(cloud_or_stack):
    stack = getattr(cloud_or_stack, "stack", cloud_or_stack)  # a LocalCloud, or a provisioned Stack
    if stack is None or not hasattr(stack, "resources"):
        raise LocalAuthError("the local cloud is not started")
    return stack


def key_secret_name(stack_name: str) -> str:
    return physical_name(stack_name, KEY_SECRET_LOGICAL_ID)


def signing_key(cloud_or_stack, *, refresh: bool = False) -> SigningKey:
    """The stack's key pair, from its secret on the endpoint (created, with a new key, at first use)."""
    stack = _stack(cloud_or_stack)
    cache_key = (stack.endpoint, stack.stack_name)
    with _keys_lock:
        if refresh or cache_key not in _keys:
            _keys[cache_key] = _load_or_create_key(stack.client("secretsmanager"), key_secret_name(stack.stack_name))
        return _keys[cache_key]


def _load_or_create_key(secrets, name: str) -> SigningKey:
    try:
        document = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    except secrets.exceptions.ResourceNotFoundException:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode("ascii")
        try:
            secrets.create_secret(Name=name, Description="Signs the local cloud's Cognito ID tokens (local only)",
                                  SecretString=json.dumps({"kid": _kid(private_key.public_key()), "private_key": pem}))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceExistsException":
                raise
            # Another process of the same stack created it first: use that one.
        document = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
    private_key = serialization.load_pem_private_key(document["private_key"].encode("ascii"), password=None)
    return SigningKey(document["kid"], private_key)


def _kid(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")  # Cognito's kids are base64 too


# -- the stack's user pools ------------------------------------------------------------------------

def user_pools(cloud_or_stack) -> list[UserPool]:
    """Every user pool of the stack with the app clients and groups that name it in UserPoolId."""
    stack = _stack(cloud_or_stack)
    resolver, template = stack.resolver, stack.template
    by_type: dict[str, list[str]] = {}
    for logical_id, resource in stack.resources.items():
        by_type.setdefault(resource.type, []).append(logical_id)

    def members(kind: str, pool_id: str) -> tuple[str, ...]:
        return tuple(sorted(
            stack.ref(logical_id) for logical_id in by_type.get(kind, [])
            if resolver.resolve(template.resources[logical_id].get("Properties", {}).get("UserPoolId")) == pool_id))

    pools = []
    for logical_id in sorted(by_type.get(USER_POOL, [])):
        resource = stack.resources[logical_id]
        properties = template.resources[logical_id].get("Properties", {})
        username_attributes = resolver.resolve(properties.get("UsernameAttributes")) or []
        pools.append(UserPool(
            logical_id=logical_id, pool_id=resource.ref, arn=resource.attributes["Arn"],
            issuer=resource.attributes["ProviderURL"], client_ids=members(USER_POOL_CLIENT, resource.ref),
            groups=members(USER_POOL_GROUP, resource.ref), email_is_username="email" in username_attributes,
        ))
    return pools


def _pick_pool(pools: list[UserPool], user_pool: str | None) -> UserPool:
    if user_pool is not None:
        for pool in pools:
            if user_pool in (pool.logical_id, pool.pool_id, pool.arn):
                return pool
        raise LocalAuthError(f"no user pool {user_pool!r} in the stack (pools: {_names(pools)})")
    if len(pools) != 1:
        raise LocalAuthError(f"the stack has {len(pools)} user pools ({_names(pools)}): name one")
    return pools[0]


def _names(pools: list[UserPool]) -> str:
    return ", ".join(pool.logical_id for pool in pools) or "none"


# -- tokens ----------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_part(value: dict) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def issue_token(cloud_or_stack, role: str, *, username: str | None = None, minutes: float = 60,
                user_pool: str | None = None, client_id: str | None = None, issued_at: float | None = None,
                overrides: dict | None = None) -> str:
    """A Cognito ID token for a user in group `role`, signed with the stack's key.

    `user_pool`: a pool's logical id, id or ARN (default: the stack's only pool); `client_id`: the
    audience (default: the pool's first app client); `issued_at`: epoch seconds (default: now);
    `overrides`: claims to set or replace (tests: another audience, another token_use).
    """
    stack = _stack(cloud_or_stack)
    pool = _pick_pool(user_pools(stack), user_pool)
    if pool.groups and role not in pool.groups:
        raise LocalAuthError(f"{pool.logical_id} has no group {role!r} (groups: {', '.join(pool.groups)})")
    if client_id is None:
        if not pool.client_ids:
            raise LocalAuthError(f"{pool.logical_id} has no AWS::Cognito::UserPoolClient")
        client_id = pool.client_ids[0]
    username = username or f"local-{role}@example.com"
    email = username if "@" in username else f"{username}@example.com"
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pool.issuer}/{username}"))  # the same user, the same sub
    now = int(time.time() if issued_at is None else issued_at)
    claims: dict[str, Any] = {
        "sub": sub,
        "cognito:groups": [role],
        "email_verified": True,
        "iss": pool.issuer,
        "cognito:username": sub if pool.email_is_username else username,
        "origin_jti": str(uuid.uuid4()),
        "aud": client_id,
        "event_id": str(uuid.uuid4()),
        "token_use": "id",
        "auth_time": now,
        "exp": now + int(minutes * 60),
        "iat": now,
        "jti": str(uuid.uuid4()),
        "email": email,
    }
    claims.update(overrides or {})
    key = signing_key(stack)
    signing_input = f"{_json_part({'kid': key.kid, 'alg': 'RS256'})}.{_json_part(claims)}"
    signature = key.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class CognitoVerifier:
    """API Gateway's COGNITO_USER_POOLS authorizer for some of the stack's pools (default: all of them)."""

    def __init__(self, cloud_or_stack, user_pool_arns: Iterable[str] | None = None):
        self.stack = _stack(cloud_or_stack)
        pools = user_pools(self.stack)
        if user_pool_arns is None:
            self.pools = {pool.issuer: pool for pool in pools}
        else:
            self.pools = {}
            for arn in user_pool_arns:
                pool = next((pool for pool in pools if pool.arn == arn), None)
                if pool is None:
                    raise LocalAuthError(f"user pool {arn} is not one of the template's user pools "
                                         f"({_names(pools)}): the local cloud can only stand in for those")
                self.pools[pool.issuer] = pool
        signing_key(self.stack)  # the key exists before the first request (and before `oms local token`)

    def verify(self, token: str | None, *, now: float | None = None) -> dict:
        """The token's claims, or TokenRejectedError with API Gateway's message."""
        try:
            header_part, claims_part, signature_part = (token or "").split(".")
            header = json.loads(_unb64url(header_part))
            claims = json.loads(_unb64url(claims_part))
            signature = _unb64url(signature_part)
        except ValueError:  # not three parts, not base64url, not JSON
            raise TokenRejectedError(UNAUTHORIZED) from None
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            raise TokenRejectedError(UNAUTHORIZED)
        key = signing_key(self.stack)
        if header.get("kid") != key.kid:
            key = signing_key(self.stack, refresh=True)  # the secret may have been created anew since
            if header.get("kid") != key.kid:
                raise TokenRejectedError(UNAUTHORIZED)
        try:
            key.public_key.verify(signature, f"{header_part}.{claims_part}".encode("ascii"), padding.PKCS1v15(),
                                  hashes.SHA256())
        except InvalidSignature:
            raise TokenRejectedError(UNAUTHORIZED) from None
        issuer = claims.get("iss")
        pool = self.pools.get(issuer) if isinstance(issuer, str) else None
        if pool is None or claims.get("token_use") != "id" or claims.get("aud") not in pool.client_ids:
            raise TokenRejectedError(UNAUTHORIZED)
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool):
            raise TokenRejectedError(UNAUTHORIZED)
        if (time.time() if now is None else now) >= expires:
            raise TokenRejectedError(EXPIRED)
        return claims


def verify_token(cloud_or_stack, token: str | None, *, user_pool_arns: Iterable[str] | None = None,
                 now: float | None = None) -> dict:
    """The token's claims when API Gateway's Cognito authorizer for these pools would let it in, else
    TokenRejectedError. Serving many requests? Build one `CognitoVerifier` instead."""
    return CognitoVerifier(cloud_or_stack, user_pool_arns).verify(token, now=now)


def rest_claims(claims: dict) -> dict[str, str]:
    """The claims as a REST API passes them in `requestContext.authorizer.claims`."""
    shaped = {}
    for name, value in claims.items():
        if name in _DATE_CLAIMS and isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = time.gmtime(value)  # Java's Date.toString in UTC, whatever this machine's locale
            shaped[name] = (f"{_WEEKDAYS[moment.tm_wday]} {_MONTHS[moment.tm_mon - 1]} {moment.tm_mday:02d} "
                            f"{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d} UTC {moment.tm_year}")
        elif isinstance(value, bool):
            shaped[name] = "true" if value else "false"
        elif isinstance(value, list):
            shaped[name] = ",".join(str(item) for item in value)
        elif isinstance(value, dict):
            shaped[name] = json.dumps(value, separators=(",", ":"))
        else:
            shaped[name] = str(value)
    return shaped
