"""What runs inside a worker process, on the app's interpreter, faithful to the Lambda Python
runtime: the fork-server and worker (:mod:`.main`, :mod:`.fork_server`, :mod:`.worker`), the
handler's context (:mod:`.context`), every error payload an invocation can answer with
(:mod:`.errors`) and the frames to the runner (:mod:`.frames`).

Standard library only, with relative imports: in a worker this folder is the private package
``_pylive_sandbox``; pylive imports it as ``pylive.sandbox`` (the pool and the local Lambda
host build the same context and payloads from it)."""
