"""`cofi`: submit batches, watch them, read their failures and results, steer them.

The CLI never writes the database (the tracker is its only writer): it reads the tables
(`readmodel`) and sends commands (BatchStart, BatchControl) to Kafka (`sender`). One module
per command group; they are registered here, in the order `cofi --help` lists them; `api`
is what other tools (the demo) may use. Exit codes (`cofi.errors`): 0 ok (status: batch
Completed), 1 batch not completed / not found, 2 invalid input (nothing was sent), 3 Kafka
or the database unreachable.
"""

from cofi.ops.cli import control, monitor, results, submit, watch
from cofi.ops.cli.app import app

for _command in (submit.submit, watch.status, results.failures, results.results, control.resume, control.reaudit,
                 control.cancel, monitor.monitor):
    app.command()(_command)

__all__ = ["app"]
