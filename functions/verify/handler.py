"""The buyers' public endpoint for SMS codes: POST /verifications/{verification_id} {"code": "123456"}.

API Gateway throttles it per stage; each code allows 5 attempts (counted atomically), so guessing is
bounded by both. Answers (JSON):
- 200 {"status": "verified"} (also when it was verified before: a double submit is harmless);
  (`attempts_left` is null except with `wrong_code`)
- 422 {"status": "wrong_code", "attempts_left": n}; a malformed body is a 422 with what is wrong;
- 409 {"status": "failed" | "closed"}: out of attempts (the order went to review) or settled otherwise;
- 410 {"status": "expired"}: too late, the order went to review;
- 404 {"status": "not_found"}.
"""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from oms.observability import logger
from oms.services.risk_dependencies import verification_ports
from oms.services.verify import confirm_code
from oms.settings import get_settings
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Annotated

app = APIGatewayRestResolver(enable_validation=True)

_STATUS_CODES = {"verified": 200, "already_verified": 200, "wrong_code": 422, "failed": 409, "closed": 409,
                 "expired": 410, "not_found": 404}


class ConfirmCodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9]{6}$", description="the 6-digit code from the SMS")


class ConfirmCodeResponse(BaseModel):
    status: str
    attempts_left: int | None = None


@lru_cache(maxsize=1)
def _ports():
    return verification_ports(get_settings())


@app.post("/verifications/<verification_id>")
def confirm(verification_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
            request: ConfirmCodeRequest) -> Response[ConfirmCodeResponse]:
    outcome = confirm_code(verification_id, request.code, _ports())
    body = ConfirmCodeResponse(status="verified" if outcome.status == "already_verified" else outcome.status,
                               attempts_left=outcome.attempts_left if outcome.status == "wrong_code" else None)
    logger.info("verification code submitted", extra={"verification_id": verification_id, "status": outcome.status})
    return Response(status_code=_STATUS_CODES[outcome.status], content_type=content_types.APPLICATION_JSON,
                    body=body)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
