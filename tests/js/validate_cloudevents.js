// Validates a CloudEvents JSON batch (a JSON array of events, the file named on the command
// line) against the CloudEvents v1.0 JSON schema, as compiled by the CNCF CloudEvents SDK
// (cloudevents@10.0.0, dist/schema/v1: the spec's draft-07 schema with its date-time, uri
// and uri-reference formats). Prints one line per failure and exits 1 when any event fails;
// prints the number of valid events otherwise. Run by burnrate's Rust tests.
"use strict";

const fs = require("node:fs");
const validate = require("cloudevents/dist/schema/v1");

const events = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
if (!Array.isArray(events)) {
  console.error("not a JSON array of events");
  process.exit(1);
}
const failures = events.flatMap((event, index) =>
  validate(event)
    ? []
    : validate.errors.map((error) => `[${index}]${error.instancePath} ${error.message}`),
);
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(`${events.length} valid CloudEvents`);
