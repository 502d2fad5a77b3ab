"""`pylive dev`: one session (:mod:`pylive.session.dev`) built from one options object
(:mod:`pylive.session.options`), whose target is the only difference: the stage's stubs in AWS
(:mod:`pylive.session.aws`), or the local HTTP API (:mod:`pylive.session.http_front`) with the
local cloud (:mod:`pylive.session.local_cloud`) or nothing between it and the workers."""
