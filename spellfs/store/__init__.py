"""The bottom layer: content-addressed objects, storage backends with atomic writes,
append-only record files and YAML I/O. It knows nothing of sessions.

May import: errors and names only (see tests/test_layers.py). Public names are re-exported
here and imported on first use (:mod:`spellfs.lazy`).
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(
    __name__,
    {
        "CHUNK": "codec",
        "FsObjectStore": "objects",
        "FsStorage": "storage",
        "MemoryObjectStore": "memory",
        "MemoryStorage": "memory",
        "ObjectStore": "backend",
        "PACKED_MAX": "objects",
        "Packs": "packs",
        "RecordError": "records",
        "RecordLog": "records",
        "Storage": "storage",
        "atomic_create": "atomic",
        "atomic_replace": "atomic",
        "atomic_write": "atomic",
        "decode": "codec",
        "disk_error": "atomic",
        "dump_yaml": "yamlio",
        "dump_yaml_rt": "yamlio",
        "encode_record": "records",
        "file_kind": "links",
        "hash_bytes": "codec",
        "load_json": "jsonio",
        "load_yaml": "yamlio",
        "load_yaml_rt": "yamlio",
        "parse_records": "records",
        "stream_content": "codec",
        "validate_oid": "codec",
        "write_all": "atomic",
    },
)
