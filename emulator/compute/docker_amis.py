"""Mixed into DockerDriver: Docker's side of an image of one's own launched as the other kind (emulator/ami_kinds.py):
a container image's files read out (`docker export` of a container created from it, never
started), and a VM disk's files imported as an image labelled with the cloud and the AMI,
found again by that label to be removed."""
from __future__ import annotations

import io
from contextlib import contextmanager
from typing import BinaryIO, Iterator

import docker


LABEL_CLOUD = "pocketcloud.cloud"
LABEL_SNAPSHOT = "pocketcloud.snapshot"
LABEL_AMI = "pocketcloud.ami"
LABEL_EXPORT = "pocketcloud.export"  # a container made only to be exported: never an instance
AMI_REPOSITORY = "pocketcloud-amis"


class _Chunks(io.RawIOBase):
    """A file over an iterator of byte chunks (what the SDK's export gives), for tarfile's
    stream mode."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks, self._left = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buf), len(self._left))
        buf[:n], self._left = self._left[:n], self._left[n:]
        return n


def ami_ref(ami_id: str) -> str:
    return f"{AMI_REPOSITORY}:{ami_id}"


class DockerAmis:
    """Uses the driver's client, cloud_label and _errors."""

    @contextmanager
    def exported(self, ref: str, ami_id: str) -> Iterator[BinaryIO]:
        """The files of image REF (AMI_ID's) as a tar stream."""
        with self._errors(f"export {ref}"):
            c = self.client.containers.create(ref, command=["/bin/true"], network_disabled=True,
                                              # (an image's labels pass to its containers: this one
                                              # is no instance of the cloud, whatever it was made of)
                                              labels={LABEL_EXPORT: self.cloud_label, LABEL_AMI: ami_id,
                                                      LABEL_CLOUD: ""})
        try:
            with self._errors(f"export {ref}"):
                yield io.BufferedReader(_Chunks(iter(c.export(chunk_size=1 << 20))), 1 << 20)
        finally:
            with self._errors(f"remove the export container of {ref}"):
                try:
                    c.remove(force=True)
                except docker.errors.NotFound:
                    pass

    def import_ami(self, tar: BinaryIO, ami_id: str) -> str:
        """A rootfs tar as the image an AMI launches as a container: /sbin/init as its command,
        as the catalog's recipes are imported."""
        labels = f'LABEL {LABEL_CLOUD}="{self.cloud_label}" {LABEL_AMI}="{ami_id}"'
        with self._errors(f"import {ami_id}"):
            self.client.api.import_image_from_data(tar, repository=AMI_REPOSITORY, tag=ami_id,
                                                   changes=['CMD ["/sbin/init"]', labels])
        return ami_ref(ami_id)

    def ami_images(self) -> dict[str, str]:
        """This cloud's AMI images by AMI id (a tag, or the id of one whose tag went)."""
        with self._errors("list AMI images"):
            images = self.client.images.list(filters={"label": [f"{LABEL_CLOUD}={self.cloud_label}", LABEL_AMI]})
        out = {}
        for img in images:
            if LABEL_SNAPSHOT in (img.labels or {}):  # a commit of a container of it: it inherits its labels
                continue
            aid = (img.labels or {}).get(LABEL_AMI, "")
            out[aid] = ami_ref(aid) if ami_ref(aid) in (img.tags or []) else img.id
        return out

    def export_leftovers(self, busy: set[str]) -> list[str]:
        """Remove export containers a dead server left behind (not those of the AMIs in BUSY:
        being exported now)."""
        with self._errors("list export containers"):
            found = [c for c in self.client.containers.list(all=True, filters={
                "label": f"{LABEL_EXPORT}={self.cloud_label}"}) if c.labels.get(LABEL_AMI) not in busy]
            for c in found:
                try:
                    c.remove(force=True)
                except docker.errors.NotFound:
                    pass
        return [c.short_id for c in found]
