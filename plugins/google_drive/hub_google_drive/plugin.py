"""Hook implementations only: what Google Drive brings to the hub."""

from __future__ import annotations

from hub import Action, EntityMapper, InboundSync, OutboundSync, ProviderInfo, WebhookVerifier, hookimpl
from hub.entities import Document
from hub_google_drive import actions, automation, channels, webhooks
from hub_google_drive.auth import GoogleOAuth2
from hub_google_drive.config import RATE_LIMITS, SCOPE, SLUG, DriveSettings, Hosts
from hub_google_drive.syncs import (
    CHANGES,
    DOCUMENT,
    JOB_FOLDER,
    FileChange,
    JobFolder,
    PullChanges,
    PushDocuments,
    PushJobFolders,
)


def _channel_secret(environ) -> str | None:
    return environ.get("GOOGLE_DRIVE_CHANNEL_SECRET") or environ.get("GOOGLE_CLIENT_SECRET")


@hookimpl
def hub_register_providers(register):
    register(ProviderInfo(
        slug=SLUG, title="Google Drive", category="storage", auth_kind="oauth2",
        description="A folder per job, documents and signed PDFs filed into it, sharing with clients, and "
                    "notice when someone changes a file the hub put there.",
        scopes=(SCOPE,), settings=DriveSettings, webhooks=True, rate_limits=RATE_LIMITS,
        docs_url="https://developers.google.com/workspace/drive/api/guides/about-sdk",
    ))


@hookimpl
def hub_register_auth(register, config):
    register(GoogleOAuth2(Hosts.from_environ(config.environ), config.environ.get("GOOGLE_CLIENT_ID"),
                          config.environ.get("GOOGLE_CLIENT_SECRET")))


@hookimpl
def hub_register_entity_mappers(register):
    # Folders and files are created from the records' own fields (syncs.py); the mappers say so.
    register(EntityMapper(provider=SLUG, entity=JOB_FOLDER, to_provider=lambda folder, ctx: {
        "name": folder.name, "mimeType": "application/vnd.google-apps.folder"}))
    register(EntityMapper(provider=SLUG, entity=DOCUMENT, to_provider=lambda document, ctx: {
        "name": document.name, "mimeType": document.mime_type}))
    register(EntityMapper(provider=SLUG, entity=CHANGES, from_provider=lambda payload, ctx: payload))


@hookimpl
def hub_register_syncs(register, config):
    hosts = Hosts.from_environ(config.environ)
    register(OutboundSync(provider=SLUG, entity=JOB_FOLDER, push=PushJobFolders(hosts), schema=JobFolder))
    register(OutboundSync(provider=SLUG, entity=DOCUMENT, push=PushDocuments(hosts), schema=Document))
    register(InboundSync(provider=SLUG, entity=CHANGES, pull=PullChanges(hosts), schema=FileChange,
                         every=channels.EVERY))
    renew = channels.Renew(hosts, _channel_secret(config.environ))
    register(InboundSync(provider=SLUG, entity=channels.ENTITY, pull=renew, schema=channels.PushChannel,
                         every=channels.EVERY))


@hookimpl
def hub_register_webhook_verifiers(register, config):
    register(WebhookVerifier(provider=SLUG, verify=webhooks.make_verify(_channel_secret(config.environ)),
                             parse=webhooks.parse, handle=webhooks.handle, per_connection=True,
                             max_body_bytes=65_536))


@hookimpl
def hub_register_actions(register, config):
    create_job_folder, upload_file, share_folder, list_folder = actions.make_actions(Hosts.from_environ(config.environ))
    register(Action(provider=SLUG, name="create_job_folder", input=actions.CreateJobFolderIn,
                    output=actions.FolderOut, handler=create_job_folder,
                    description="The job's Drive folder: created the first time, the same folder every time after "
                                "(a new name renames it)."))
    register(Action(provider=SLUG, name="upload_file", input=actions.UploadFileIn, output=actions.UploadFileOut,
                    handler=upload_file,
                    description="Upload a file (inline base64 or a hub file) into a folder or a job's folder: one "
                                "request up to 5 MB, a resumable upload in 256 KiB-multiple chunks above."))
    register(Action(provider=SLUG, name="share_folder", input=actions.ShareFolderIn, output=actions.ShareFolderOut,
                    handler=share_folder,
                    description="Give someone read or write access to a folder, with or without Google's email."))
    register(Action(provider=SLUG, name="list_folder", input=actions.ListFolderIn, output=actions.ListFolderOut,
                    handler=list_folder, description="What is in a folder (or a job's folder), a page at a time."))


@hookimpl
async def hub_event(event, context):
    await automation.file_signed_envelope(event, context)
