"""What the runner adds on the submitting host of a cluster sweep."""

from __future__ import annotations

import logging


class SacctWithoutAccounting(logging.Filter):
    """submitit polls `sacct` for job states and warns on every poll when the cluster keeps no
    accounting (`AccountingStorageType=accounting_storage/none`, as on a small or test cluster).
    The states are not needed: submitit also sees a job end through its result file. So the
    warning is said once, explained, and then dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.explained = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "sacct error" not in record.getMessage():
            return True
        if not self.explained:
            self.explained = True
            logging.getLogger("celine.cluster").info(
                "SLURM accounting is off here (sacct fails): submitit follows the jobs through "
                "their result files instead; its repeated sacct warnings are hidden"
            )
        return False


def quiet_sacct_warnings() -> None:
    logger = logging.getLogger("submitit")
    if not any(isinstance(f, SacctWithoutAccounting) for f in logger.filters):
        logger.addFilter(SacctWithoutAccounting())
