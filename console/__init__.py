"""The operations console: ``/console`` on the service's web server (docs/console.md).

Server-rendered HTML (Jinja2, autoescaped), one small hand-written script, no build step.

- :mod:`console.views`: the pages' data, pure: coverage, a clock and the projection in,
  plain data out (the now panel, the coverage timeline, the preview, the queue, the
  overrides, the reply times); every coverage figure is the engine's answer
  (:mod:`schedules`), every decision the worker's policy (:mod:`triage.policy`);
- :mod:`console.projection`: the queue's view of all partitions, built in the web
  process from the events, actions and routes topics with the worker's own pure code;
- :mod:`console.feed`: reads those topics from their start into the projection;
- :mod:`console.session`: sign-in with an operations token, signed session cookies, CSRF;
- :mod:`console.web`: the aiohttp application (handlers, templates, the static script);
  changes (overrides, claims, answered) go through the operations API itself.

May import: :mod:`edge`, :mod:`triage`, :mod:`promises`, :mod:`brokers`,
:mod:`schedules`, :mod:`records`; never :mod:`streams` (it shares its layer) or
:mod:`offhours`, which mounts it.
"""
