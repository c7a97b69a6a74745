"""The console's next step for each error code: what to do on which page (the CLI has its
own wording of the same, in api/cli/context.py)."""
from __future__ import annotations

NEXT_STEP = {
    "InvalidInstanceID.NotFound": "Terminated instances disappear after an hour; the Instances page lists yours.",
    "NotFound": "Check the address; the navigation above leads to everything you own.",
    "IncorrectInstanceState": "Wait until it has finished changing state (the page updates by itself), then try again.",
    "InstanceLimitExceeded": "Terminate an instance you no longer need (Instances page), or ask an admin to raise "
                             "your quota.",
    "InvalidAMIID.NotFound": "The Images page shows what is built; on the server host, "
                             "`pocketcloud images build NAME` builds a recipe.",
    "InvalidInstanceType": "Pick one of the types in the list.",
    "InvalidKeyPair.NotFound": "Create or import one on the Key pairs page, then launch again.",
    "InvalidKeyPair.Duplicate": "Pick another name, or delete the old key pair first.",
    "PortInUse": "Give only the guest port (e.g. 80) and pocketcloud picks a free host port.",
    "ServiceUnavailable": "The System page shows which engine is down; `make up` on the server host starts it.",
    "InvalidParameterValue": "Correct the value named above and submit again.",
    "MissingParameter": "Fill in the field named above and submit again.",
    "RequestTooLarge": "Send less: user data is limited, large files go to a bucket.",
    "QuotaExceeded": "Delete what you no longer need, or ask an admin to raise your quota.",
    "RequestLimitExceeded": "Wait for one of your running commands to finish, then run this again.",
    "UnauthorizedOperation": "This needs an admin account.",
    "AccessDenied": "Ask the bucket's owner to share it with you.",
    "NoSuchBucket": "The Buckets page lists yours and those shared with you.",
    "BucketAlreadyExists": "Bucket names are global, as in S3: pick another.",
    "BucketAlreadyOwnedByYou": "You have it already: the Buckets page lists it.",
    "BucketNotEmpty": "Delete its objects first, or tick \"delete its objects too\".",
    "UploadFailed": "Try again; the System page shows whether the storage engine is up.",
}
DEFAULT = "If it happens again, the server's log (where `pocketcloud serve` runs) says more."


def next_step(code: str | None, message: str = "") -> str:
    """One sentence: what to do now. Empty when the message itself already says it."""
    if code == "IncorrectInstanceState" and "terminated" in message:
        return "A terminated instance is gone for good: launch a new one on the Instances page."
    hint = NEXT_STEP.get(code or "", DEFAULT)
    if "`pocketcloud" in message and "`pocketcloud" in hint:
        return ""
    return hint
