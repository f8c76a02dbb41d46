// A typed hookstream consumer: it subscribes to EventService.Subscribe as a consumer group,
// prints one line per event with fields of its typed payload, acks each event on the same
// stream, and exits 0 after N events.
//
//   node dist/consume.js [GROUP] [COUNT]
//
// GROUP (or HOOKSTREAM_GROUP) defaults to "example-ts", COUNT (or HOOKSTREAM_COUNT) to 3, and
// the internal gRPC address (HOOKSTREAM_SERVER) to 127.0.0.1:9090, where `hookstream serve
// --dev` listens (plaintext HTTP/2: loopback only). A new group starts with every retained
// event; the next run of the same group goes on after the events this one acked.
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { type Event, StartPosition_Policy } from "./gen/hookstream/v1/event_pb.js";
import {
  EventService,
  type SubscribeRequest,
  SubscribeRequestSchema,
} from "./gen/hookstream/v1/event_service_pb.js";
import { EventType } from "./gen/hookstream/mvmnt/v1/mvmnt_pb.js";

const group = process.argv[2] ?? process.env.HOOKSTREAM_GROUP ?? "example-ts";
const count = Number(process.argv[3] ?? process.env.HOOKSTREAM_COUNT ?? 3);
const server = process.env.HOOKSTREAM_SERVER ?? "127.0.0.1:9090";

/**
 * Requests is the request side of a bidirectional stream: an async iterable that yields what
 * is pushed, in order, until close. connect-es sends the requests as the iterable yields them.
 */
class Requests implements AsyncIterable<SubscribeRequest> {
  private queue: SubscribeRequest[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  push(r: SubscribeRequest): void {
    this.queue.push(r);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SubscribeRequest> {
    for (;;) {
      const r = this.queue.shift();
      if (r !== undefined) {
        yield r;
      } else if (this.closed) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    }
  }
}

/** snake turns a oneof case of protobuf-es (camelCase) back into the proto field's name. */
function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/** describe is one line of an event's typed payload (the same line as the Python example's). */
function describe(e: Event): string {
  const p = e.payload;
  switch (p.case) {
    case "mvmnt": {
      const d = p.value.data;
      const entity = d.case === undefined ? "no_data" : `${snake(d.case)}.id=${d.value.id}`;
      return `mvmnt event_type=${EventType[p.value.eventType]} ${entity}`;
    }
    case "moveapi":
      return `moveapi event_name=${p.value.eventName} job_id=${p.value.detail?.jobId}`;
    case "movement": {
      const o = p.value.object;
      const object = o.case === undefined ? "no_object" : `${snake(o.case)}.id=${o.value.id}`;
      return `movement topic=${p.value.topic} event=${p.value.event} ${object}`;
    }
    case "listener":
      return `listener listener_id=${p.value.listenerId} event_type=${p.value.eventType}`;
    default:
      return `untyped type=${e.type}`;
  }
}

async function main(): Promise<number> {
  if (!Number.isInteger(count) || count < 1) {
    console.error(`consume: COUNT must be a whole number above 0, not ${count}`);
    return 2;
  }
  const transport = createGrpcTransport({
    baseUrl: `http://${server}`,
    // hookstream cuts clients that ping more often than every 20 s.
    pingIntervalMs: 30_000,
  });
  const client = createClient(EventService, transport);
  const requests = new Requests();
  requests.push(
    create(SubscribeRequestSchema, {
      kind: {
        case: "open",
        value: {
          group,
          start: { policy: StartPosition_Policy.ALL },
          // Hold no more than will be printed: an event sent and never acked would use up one
          // of its deliveries.
          maxInFlight: count,
        },
      },
    }),
  );
  let printed = 0;
  for await (const res of client.subscribe(requests)) {
    switch (res.kind.case) {
      case "events":
        for (const re of res.kind.value.events) {
          if (printed === count) {
            break; // not acked: redelivered to the group
          }
          if (re.event !== undefined) {
            console.log(`seq=${re.event.sequence} ${describe(re.event)}`);
          }
          printed++;
          requests.push(create(SubscribeRequestSchema, { kind: { case: "settle", value: { ackIds: [re.ackId] } } }));
        }
        if (printed === count) {
          // Half-close and read on until the server ends the stream: it has then applied every ack.
          requests.close();
        }
        break;
      case "draining":
        console.error(`the server is draining the stream (${res.kind.value.reason}): run again to go on`);
        return 1;
      default:
        break; // subscribed, heartbeat
    }
  }
  return printed === count ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`consume: ${err}`);
    process.exit(1);
  },
);
