from __future__ import annotations

from typing import Annotated

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Redirect

from hub.api.deps import HubDep
from hub.oauth import complete_callback


@get("/v1/oauth/callback", tags=["connections"], status_code=302,
     summary="Where providers send the user back after consent; redirects to the tenant's return_url")
async def oauth_callback(
    request: Request, hub: HubDep, oauth_state: Annotated[str, QueryParameter(name="state", max_length=512)]
) -> Redirect:
    params = {key: value for key, value in request.query_params.items()}
    return Redirect(await complete_callback(hub, params), status_code=302)
