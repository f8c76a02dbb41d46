#!/usr/bin/python3
"""A typed hookstream consumer.

It subscribes to EventService.Subscribe as a consumer group, prints one line per event with
fields of its typed payload, acks each event on the same stream, and exits 0 after N events.

    /usr/bin/python3 examples/python/consume.py [GROUP] [COUNT]

GROUP (or HOOKSTREAM_GROUP) defaults to "example-py", COUNT (or HOOKSTREAM_COUNT) to 3, and the
internal gRPC address (HOOKSTREAM_SERVER) to 127.0.0.1:9090, where `hookstream serve --dev`
listens (plaintext: loopback only). A new group starts with every retained event; the next run
of the same group goes on after the events this one acked.

It runs on Debian's python3-grpcio and python3-protobuf (so /usr/bin/python3, not a Python of
its own), with the code generated into gen/ beside it (see README.md).
"""

import os
import queue
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402

from hookstream.mvmnt.v1 import mvmnt_pb2  # noqa: E402
from hookstream.v1 import event_pb2, event_service_pb2, event_service_pb2_grpc  # noqa: E402

# hookstream cuts clients that ping more often than every 20 s.
CHANNEL_OPTIONS = [("grpc.keepalive_time_ms", 30_000)]


class Requests:
    """The request side of a bidirectional stream: yields what is pushed, in order, until close.

    grpcio reads the iterator in a thread of its own, so a queue hands the requests over.
    """

    _CLOSE = object()

    def __init__(self):
        self._queue = queue.Queue()

    def push(self, request):
        self._queue.put(request)

    def close(self):
        self._queue.put(self._CLOSE)

    def __iter__(self):
        while True:
            request = self._queue.get()
            if request is self._CLOSE:
                return
            yield request


def describe(event):
    """One line of an event's typed payload (the same line as the TypeScript example's)."""
    case = event.WhichOneof("payload")
    if case == "mvmnt":
        m = event.mvmnt
        data = m.WhichOneof("data")
        entity = f"{data}.id={getattr(m, data).id}" if data else "no_data"
        event_type = mvmnt_pb2.EventType.Name(m.event_type).removeprefix("EVENT_TYPE_")
        return f"mvmnt event_type={event_type} {entity}"
    if case == "moveapi":
        w = event.moveapi
        return f"moveapi event_name={w.event_name} job_id={w.detail.job_id}"
    if case == "movement":
        w = event.movement
        obj = w.WhichOneof("object")
        described = f"{obj}.id={getattr(w, obj).id}" if obj else "no_object"
        return f"movement topic={w.topic} event={w.event} {described}"
    if case == "listener":
        n = event.listener
        return f"listener listener_id={n.listener_id} event_type={n.event_type}"
    return f"untyped type={event.type}"


def consume(stub, group, count):
    """Prints and acks count events of group; returns the exit status."""
    requests = Requests()
    requests.push(
        event_service_pb2.SubscribeRequest(
            open=event_service_pb2.SubscribeRequest.Open(
                group=group,
                start=event_pb2.StartPosition(policy=event_pb2.StartPosition.POLICY_ALL),
                # Hold no more than will be printed: an event sent and never acked would use up
                # one of its deliveries.
                max_in_flight=count,
            )
        )
    )
    printed = 0
    for response in stub.Subscribe(iter(requests)):
        kind = response.WhichOneof("kind")
        if kind == "events":
            for received in response.events.events:
                if printed == count:
                    break  # not acked: redelivered to the group
                print(f"seq={received.event.sequence} {describe(received.event)}", flush=True)
                printed += 1
                settle = event_service_pb2.SubscribeRequest.Settle(ack_ids=[received.ack_id])
                requests.push(event_service_pb2.SubscribeRequest(settle=settle))
            if printed == count:
                # Half-close and read on until the server ends the stream: it has then applied
                # every ack.
                requests.close()
        elif kind == "draining":
            print(f"the server is draining the stream ({response.draining.reason}): run again to go on", file=sys.stderr)
            return 1
        # subscribed, heartbeat: nothing to do
    return 0 if printed == count else 1


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HOOKSTREAM_GROUP", "example-py")
    count_arg = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("HOOKSTREAM_COUNT", "3")
    if not count_arg.isdigit() or int(count_arg) < 1:
        print(f"consume: COUNT must be a whole number above 0, not {count_arg}", file=sys.stderr)
        return 2
    server = os.environ.get("HOOKSTREAM_SERVER", "127.0.0.1:9090")
    with grpc.insecure_channel(server, options=CHANNEL_OPTIONS) as channel:
        stub = event_service_pb2_grpc.EventServiceStub(channel)
        try:
            return consume(stub, group, int(count_arg))
        except grpc.RpcError as err:
            print(f"consume: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
