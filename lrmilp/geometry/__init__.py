"""Geometry of linear regions: lines, planes, distance to the boundary, faces, conv cones.

Each concern has its own module; everything here is exact arithmetic on the affine pieces of the
network except the facet LPs of :mod:`.faces`.
"""

from .lines import LineResult, PolylineResult, line_regions, polyline_regions
from .plane import PlanePartition, plane_partition, window_inside_box
from .distance import DistanceResult, boundary_distance
from .faces import FacesResult, region_faces
from .cones import ConeResult, cone_statistics

__all__ = ["ConeResult", "DistanceResult", "FacesResult", "LineResult", "PlanePartition", "PolylineResult",
           "boundary_distance", "cone_statistics", "line_regions", "plane_partition", "polyline_regions",
           "region_faces", "window_inside_box"]
