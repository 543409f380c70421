"""Functions written the way users write them with Powertools for AWS Lambda (Python): the
batch utility (BatchProcessor + process_partial_response) and the Parser models, one per source
esmd has. A record whose payload starts with POISON fails on purpose. Each record handled is
appended as a JSON line to $POWERTOOLS_SEEN_LOG (what the tests assert on)."""

import json
import os

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import KafkaEvent
from aws_lambda_powertools.utilities.parser.models import (
    KafkaRecordModel,
    KinesisDataStreamRecord,
    SqsRecordModel,
)


def seen(source, payload, outcome, **extra):
    path = os.environ.get("POWERTOOLS_SEEN_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"source": source, "payload": payload, "outcome": outcome, **extra}) + "\n")


def check(source, payload, **extra):
    if payload.startswith("POISON"):
        seen(source, payload, "failed", **extra)
        raise ValueError(f"poison record {payload}")
    seen(source, payload, "ok", **extra)


# A batch whose records all fail is reported in batchItemFailures too instead of raising: the
# same outcome for esmd, and serverless-offline's Python runner cannot report an exception (the
# runner dies and the invocation times out).
sqs_processor = BatchProcessor(event_type=EventType.SQS, model=SqsRecordModel, raise_on_entire_batch_failure=False)
kinesis_processor = BatchProcessor(event_type=EventType.KinesisDataStreams, model=KinesisDataStreamRecord,
                                   raise_on_entire_batch_failure=False)


def sqs_record(record: SqsRecordModel):
    check("sqs", record.body, message_id=record.messageId)


def kinesis_record(record: KinesisDataStreamRecord):
    check("kinesis", record.kinesis.data.decode(), sequence=record.kinesis.sequenceNumber)


def sqs(event, context):
    return process_partial_response(event=event, record_handler=sqs_record, processor=sqs_processor,
                                    context=context)


def kinesis(event, context):
    return process_partial_response(event=event, record_handler=kinesis_record, processor=kinesis_processor,
                                    context=context)


def kafka(event, context):
    """Kafka has no partial batch response: a poison record fails the whole invocation. A
    tombstone (null value) arrives without a `value` member, which the Parser model requires,
    so it is read through the data class."""
    failed, handled = None, 0
    for record in KafkaEvent(event).records:
        if "value" not in record.raw_event:
            seen("kafka", None, "tombstone", key=record.decoded_key.decode(), offset=record.offset)
            continue
        model = KafkaRecordModel.model_validate(record.raw_event)
        try:
            check("kafka", model.value, offset=model.offset, key=model.key.decode() if model.key else None)
        except ValueError as e:
            failed = e
        handled += 1
    if failed:
        raise failed
    # not None: serverless-offline's Python runner never answers a handler that returns None
    return {"handled": handled}
