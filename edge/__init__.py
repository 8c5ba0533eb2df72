"""The HTTP edge: what reaches the service over HTTP, checked and turned into records.

Platform webhooks are verified on their raw body, normalised to events (README:
Events) and published to the events topic; the operations API reads and changes the
coverage, which the service shares through the config topic; staff claim a
conversation or mark it answered. Nothing here decides or sends: that is the workers'.

- :mod:`edge.app`: the webhook ingest application factory;
- :mod:`edge.webhooks`: the webhook routes: verify, normalize, dedupe, publish, answer;
- :mod:`edge.signatures`: the signature checks, pure functions over the raw body;
- :mod:`edge.normalize`: one module per platform, its payload in, events out;
- :mod:`edge.dedupe`: the memory of recently produced event ids;
- :mod:`edge.sink`: where accepted events go (the events topic, or a list in tests);
- :mod:`edge.ratelimit`, :mod:`edge.ratelog`, :mod:`edge.access_log`: a token bucket
  per client address, rate-limited warnings, an access log without secrets;
- :mod:`edge.config`: the webhook settings (secrets, limits, the account mapping);
- :mod:`edge.ops`: the operations API (coverage, overrides, on call, claims);
- :mod:`edge.ops_config`: the settings of the operations API and the action links;
- :mod:`edge.config_store`: the coverage as the service holds, shares and audits it;
- :mod:`edge.actions`: on-call actions (claim, answered), written to the actions topic;
- :mod:`edge.capabilities`: what the settings turn on, and which variable turns on the rest.

May import: :mod:`responders`, :mod:`triage`, :mod:`promises`, :mod:`brokers`,
:mod:`schedules`, :mod:`records`; not :mod:`streams` or :mod:`offhours`.
"""
