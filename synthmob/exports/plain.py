"""Plain CSV of every table of a run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthmob import schema
from synthmob.exports.files import Files, path_steps
from synthmob.run import Run


# --- plain CSV ---------------------------------------------------------------------------------------------
def csv(run: Run, out: Files) -> None:
    for name in ("cells", "subscribers", "contacts", "stays"):
        out.csv(name, run.table(name))
    trips = run.table("trips")
    trip_id = pa.array(np.arange(trips.num_rows))
    out.csv("trips", trips.drop_columns(["path"]).add_column(0, "trip_id", trip_id))
    owner, _, steps = path_steps(run, trips, run.table("cells"))
    lengths = pc.list_value_length(trips["path"]).to_numpy()
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)  # row of the first step of each step's trip
    path = pa.table(
        {
            "trip_id": pc.cast(owner, pa.int64()),
            "step": pa.array(np.arange(len(steps)) - first, pa.int32()),
            schema.CELL_ID: pc.struct_field(steps, schema.CELL_ID),
            "entered": pc.struct_field(steps, "entered"),
        }
    )
    out.csv("trip_path", path)
    out.csv("events", run.table("events"))
