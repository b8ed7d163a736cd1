"""Device adapters of a booth box: printer, document camera, ID card reader.

Each kind is a small interface with a real adapter and a simulated one, so
the agent runs the same code in a booth and in tests:

- `Printer`: `SpoolPrinter(dir)` (writes PDFs into a directory; `PAPER_OUT`
  there simulates an empty tray), `CupsPrinter(queue)` (`lp -d queue`).
- `DocumentCamera`: `V4L2Camera(path)` (PyAV, the device's largest size),
  `SyntheticCamera` (a test card of a fixed size).
- `IdReader`: `SimulatedIdReader` (`sample_card()` to place); `CardWatch` turns polling into
  one read per placed card, `id_card_form` the upload of a read.

They import nothing of ours: a booth box installs light.
"""

from booth.devices.camera import DocumentCamera, Still, SyntheticCamera, V4L2Camera
from booth.devices.id_reader import CardWatch, IdCard, IdReader, SimulatedIdReader, id_card_form, sample_card
from booth.devices.printer import CupsPrinter, Printer, PrinterError, PrintOutcome, SpoolPrinter

__all__ = [
    "CardWatch", "CupsPrinter", "DocumentCamera", "IdCard", "IdReader", "PrintOutcome", "Printer", "PrinterError",
    "SimulatedIdReader", "SpoolPrinter", "Still", "SyntheticCamera", "V4L2Camera", "id_card_form", "sample_card",
]
