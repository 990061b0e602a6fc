/**
 * The log's topic names, the one place both sides read them from. The edge writes `ad-events` and
 * `edge-stats` through the REST proxy; core reads them and keeps its own state in the others.
 */

/** Accepted impressions and clicks, one envelope per record (schemas/src/envelope.ts), keyed by impression id. */
export const EVENTS_TOPIC = 'ad-events'
/** The edge's per-publisher, per-minute counts (schemas/src/edge-stats.ts), keyed by publisher id. */
export const EDGE_STATS_TOPIC = 'edge-stats'
/** Core's partition state changelog (claims, deltas, snapshots); same partition count as `ad-events`. */
export const STATE_CHANGELOG_TOPIC = 'adc-state-changelog'
/** The processors' default consumer group (core's `PROCESSOR_GROUP`). */
export const DEFAULT_PROCESSOR_GROUP = 'adc-processor'
/**
 * The state changelog of one consumer group's partitions: `adc-state-changelog` for the default
 * group, `adc-state-changelog.<group>` for any other. A changelog holds one group's claims and
 * state; two groups reading one topic (two fleets, or test runs, on one broker) must never fold
 * each other's records.
 */
export const stateChangelogTopic = (group: string): string =>
  group === DEFAULT_PROCESSOR_GROUP ? STATE_CHANGELOG_TOPIC : `${STATE_CHANGELOG_TOPIC}.${group}`
/** The tenant store's log (one compacted partition); a fleet names its own, `<FLEET_ID>-tenants`. */
export const TENANTS_TOPIC = 'adc-tenants'
/** The tenant topic a fleet of core replicas shares. */
export const fleetTenantsTopic = (fleetId: string): string => `${fleetId}-tenants`
/** The billing and reprocess job records (one compacted partition, keyed by job id); a fleet names its own, `<FLEET_ID>-billing-jobs`. */
export const BILLING_JOBS_TOPIC = 'adc-billing-jobs'
/** The billing job topic a fleet of core replicas shares. */
export const fleetBillingJobsTopic = (fleetId: string): string => `${fleetId}-billing-jobs`
/** A log lease's topic (and consumer group): `adc-lease.<name>`. */
export const leaseTopic = (name: string): string => `adc-lease.${name}`
