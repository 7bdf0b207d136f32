"""movingpandas: one point per cell entered along each trip."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from synthmob import schema
from synthmob.exports.files import Files, path_steps
from synthmob.run import Run


# --- movingpandas ------------------------------------------------------------------------------------------
# movingpandas.TrajectoryCollection(data, traj_id_col, obj_id_col, t, x, y, crs) groups a plain DataFrame by
# traj_id_col, makes points from the x/y columns and skips groups of fewer than two rows
# (movingpandas/trajectory_collection.py, _df_to_trajectories; trajectory.py, _prepare_dataframe). A
# timezone-aware t is converted to naive (tz_localize(None)) with a TimeZoneWarning and kept as df_orig_tz.
def movingpandas(run: Run, out: Files) -> None:
    cells, trips = run.table("cells"), run.table("trips")
    owner, where, steps = path_steps(run, trips, cells)
    table = pa.table(
        {
            "trip_id": pc.cast(owner, pa.int64()),
            "subscriber_id": trips[schema.SUBSCRIBER_ID].take(owner),
            "t": pc.struct_field(steps, "entered"),
            "lon": cells["centroid_lon"].take(where),
            "lat": cells["centroid_lat"].take(where),
            "cell_id": pc.struct_field(steps, schema.CELL_ID),
            "mode": trips["mode"].take(owner),
        }
    )
    out.both("points", table)
