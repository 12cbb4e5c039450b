"""Helpers for the relabeler world's packed label batches.

The host sends a scrape's label sets packed into one string and two lists
of integers (see `label-batch` in wit/types.wit): `spans` has four entries
per label (name offset, name length, value offset, value length; in UTF-8
bytes), and `sets` the number of labels of each set. `unpack` turns that
into lists of (name, value) pairs; `pack` turns the answer back, with None
for a dropped set.

Offsets count UTF-8 bytes, so the text is encoded once and sliced as bytes.
"""

from wit_world.imports.types import RelabeledBatch


def unpack(batch):
    """The batch's label sets, each a list of (name, value) pairs."""
    data = batch.text.encode("utf-8")
    spans = batch.spans
    sets = []
    i = 0
    for count in batch.sets:
        labels = []
        for _ in range(count):
            no, nl, vo, vl = spans[i:i + 4]
            labels.append((data[no:no + nl].decode("utf-8"), data[vo:vo + vl].decode("utf-8")))
            i += 4
        sets.append(labels)
    return sets


def pack(sets):
    """A relabeled batch from one entry per input set: a list of (name,
    value) pairs, or None to drop the set."""
    data = bytearray()
    spans = []
    counts = []
    offsets = {}

    def place(text):
        # Equal strings share their bytes, which keeps repeated names and
        # values (job, instance, __name__) from growing the text.
        found = offsets.get(text)
        if found is None:
            encoded = text.encode("utf-8")
            found = (len(data), len(encoded))
            data.extend(encoded)
            offsets[text] = found
        return found

    for labels in sets:
        if labels is None:
            counts.append(None)
            continue
        for name, value in labels:
            spans.extend(place(name))
            spans.extend(place(value))
        counts.append(len(labels))
    return RelabeledBatch(data.decode("utf-8"), spans, counts)
