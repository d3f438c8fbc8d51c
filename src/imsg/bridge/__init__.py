"""The IMCore bridge, client side: imsg talks to the helper dylib the Swift ``imsg`` injects
into Messages.app (``imsg launch``, SIP off) through files in Messages' container.

Modules, one job each:

- ``container``: where the files live (``IMSG_BRIDGE_CONTAINER`` overrides), every path
  component checked without following symbolic links, directories 0700;
- ``actions``: the helper's action names, which of them are mutations, their deadlines;
- ``envelope``: request files out, response files in (untrusted: size-capped, schema-checked,
  the id must match);
- ``outcome``: what a request whose answer did not come became (``not_started``,
  ``may_have_completed``, ``still_in_flight``);
- ``ipc``, ``legacy``: one exchange over file IPC v2, or legacy v1 (``IMSG_BRIDGE_LEGACY_IPC``);
- ``client``: one request, start to end, its failures as ``imsg.errors``;
- ``probe``: the helper's ``status`` and the ``bridge`` object RPC ``status`` reports;
- ``state``: what an RPC server knows of the bridge (a briefly cached probe);
- ``host``: SIP (``csrutil``) and the helper dylib's search paths;
- ``launch``: ``imsg launch`` (kill Messages, clean the IPC state, relaunch with the dylib);
- ``report``: ``imsg status`` (what OpenClaw probes);
- ``events``: the helper's event log, tailed across rotations;
- ``vocab``: tapback kinds, effects, text-formatting ranges, chat GUIDs;
- ``files``, ``stickers``, ``voice``: staging files, checking sticker images, voice notes;
- ``polls``: a poll's options and this account's votes, from local history;
- ``observe``: waiting for the row a bridge send wrote in chat.db;
- ``commands``: the actions behind the CLI's bridge commands (a launching client);
- ``local``: ``account``/``whois``/``nickname --local`` from chat.db and the AddressBook.
"""
