"""`python -m services.tracker`: batch intake, progress and recovery; the only DB writer."""

from cofi.logs import setup_logging
from cofi.settings import get_settings
from services.tracker.service import Tracker

if __name__ == "__main__":
    setup_logging()
    tracker = Tracker(get_settings())
    tracker.install_signal_handlers()
    tracker.run()
