// Test functions for esmd: echo (returns null), fail (throws), partial (reports every SQS
// record whose body contains POISON in batchItemFailures), slow (outlives its 1 s timeout).
"use strict";

exports.echo = async () => null;

exports.fail = async () => {
  throw new Error("the function failed");
};

exports.partial = async (event) => ({
  batchItemFailures: (event.Records || [])
    .filter((r) => String(r.body || "").includes("POISON"))
    .map((r) => ({ itemIdentifier: r.messageId })),
});

exports.slow = () => new Promise((resolve) => setTimeout(() => resolve(null), 5000));
