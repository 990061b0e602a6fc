/**
 * Test support: the outside tools more than one suite needs, as `Need`s for describeNeeding
 * (./needs.ts). Imported by tests only.
 */
import { pyicebergAvailable, PYTHON } from '../lake/pyiceberg.js'
import { MOTO_SERVER, motoAvailable } from './moto.js'
import type { Need } from './needs.js'

/** A Kafka broker named by KAFKA_BROKERS; `available` is the suite's own reading of that variable. */
export function kafkaBroker(available: boolean): Need {
  return {
    what: 'a Kafka broker (KAFKA_BROKERS)',
    available,
    howTo: 'start one with `export $(scripts/kafka/start.sh | tail -1)` (Java and Maven; npm test does it when they are present)',
  }
}

/** moto's S3 API server, in the virtualenv scripts/s3/ensure.sh installs. */
export const s3Server: Need = { what: `the S3 test server (${MOTO_SERVER})`, available: motoAvailable, howTo: 'run scripts/s3/ensure.sh' }

/** pyiceberg, in the virtualenv scripts/iceberg/ensure.sh installs. */
export const pyiceberg: Need = { what: `pyiceberg (${PYTHON})`, available: pyicebergAvailable, howTo: 'run scripts/iceberg/ensure.sh' }
