import type { RootDatabase } from 'lmdb'
import type { TenantCommand } from './tenant-state.js'

/**
 * Who made a tenant change, as every tenant command written carries it (`by`), with when (`at`).
 *
 * - `admin`: an admin key on the API: its principal id and the first 16 hex characters of the key's
 *   SHA-256 (`keyFingerprint`, a prefix of the `keyHash` the API names keys by), so two admin keys of
 *   one id are told apart; never the key itself.
 * - `system`: core itself, one fixed actor per path (SYSTEM_ACTORS).
 * - `unknown`: only ever read, never written: a command written before commands named their actor.
 */
export type TenantActor =
  | { kind: 'admin'; id: string; keyFingerprint: string }
  | { kind: 'system'; id: SystemActorId }

/** An actor as the change log reports it: a system actor of another build by the id it wrote. */
export type ReportedActor = TenantActor | { kind: 'system'; id: string } | { kind: 'unknown' }

/** The fixed actors of core's own changes. */
export const SYSTEM_ACTORS = {
  /** Core's own writes with no narrower path. */
  core: { kind: 'system', id: 'core' },
  /** The development demo tenant, applied on every development start (seedDemoTenant). */
  demoSeed: { kind: 'system', id: 'demo_seed' },
  /** ADC_BOOTSTRAP_ADMIN_KEY, applied once (applyBootstrapAdminKey). */
  bootstrap: { kind: 'system', id: 'bootstrap' },
  /** `npm run admin -- create-key`, an operator with access to the data directory or the log. */
  adminCli: { kind: 'system', id: 'admin_cli' },
  /** A store written before the shared tenant topic, imported into it once. */
  upgradeImport: { kind: 'system', id: 'upgrade_import' },
} as const satisfies Record<string, { kind: 'system'; id: string }>

export type SystemActorId = (typeof SYSTEM_ACTORS)[keyof typeof SYSTEM_ACTORS]['id']

export const UNKNOWN_ACTOR = { kind: 'unknown' } as const

/** Characters of a key's SHA-256 hex named in the change log. */
export const KEY_FINGERPRINT_CHARS = 16
export const keyFingerprint = (keyHash: string): string => (typeof keyHash === 'string' ? keyHash.slice(0, KEY_FINGERPRINT_CHARS) : '')

/** What a change acted on. */
export interface ChangeTarget {
  kind: 'advertiser' | 'campaign' | 'publisher' | 'admin' | 'key' | 'store'
  id: string
}

/**
 * One entry of the change log: one command of the tenant topic as applied (or refused) in topic
 * order, the same on every replica. Names no secret: signing secrets, keys and imported entries are
 * left out; keys appear by fingerprint.
 */
export interface TenantChange {
  /** Position in the tenant topic (shared store) or in this store's own sequence. */
  seq: number
  /** When the command was written (the writer's clock); for a command without `at`, the log's append time. */
  at: number
  actor: ReportedActor
  op: TenantCommand['op']
  target: ChangeTarget
  /** The command's other non-secret fields. */
  details: Record<string, unknown>
  /** `refused`: the command changed nothing (`conflict`, `unknown_reference`, or `failed` to apply). */
  outcome: 'applied' | 'refused'
  refusal?: 'conflict' | 'unknown_reference' | 'failed'
}

/** Key prefix of the change log in a tenant view. */
export const CHANGE_PREFIX = 'chg:'
const SEQ_WIDTH = 15
const changeKey = (seq: number): string => CHANGE_PREFIX + String(seq).padStart(SEQ_WIDTH, '0')

/** The target and the non-secret fields of a command. */
export function describeCommand(cmd: TenantCommand): { target: ChangeTarget; details: Record<string, unknown> } {
  switch (cmd.op) {
    case 'createAdvertiser':
      return { target: { kind: 'advertiser', id: cmd.id }, details: { name: cmd.name, keyFingerprint: keyFingerprint(cmd.keyHash) } }
    case 'createCampaign':
      return {
        target: { kind: 'campaign', id: cmd.id },
        details: { advertiserId: cmd.advertiserId, name: cmd.name, pricing: cmd.pricing, ...(cmd.publisherIds ? { publisherIds: cmd.publisherIds } : {}) },
      }
    case 'createPublisher':
      return {
        target: { kind: 'publisher', id: cmd.id },
        details: {
          name: cmd.name, keyFingerprint: keyFingerprint(cmd.hash), publicKeyFingerprint: keyFingerprint(cmd.publicHash),
          signingKeyId: cmd.signingKeyId, requestSigningKeyId: cmd.requestSigningKeyId,
          requestSigningScope: cmd.requestSigningScope ?? 'app', rateLimit: cmd.rateLimit,
        },
      }
    case 'updatePublisher':
      return { target: { kind: 'publisher', id: cmd.id }, details: { patch: cmd.patch } }
    case 'addPublisherApiKey':
      return { target: { kind: 'publisher', id: cmd.id }, details: { keyFingerprint: keyFingerprint(cmd.hash), scope: cmd.scope } }
    case 'revokePublisherApiKey':
      return { target: { kind: 'publisher', id: cmd.id }, details: { keyFingerprint: keyFingerprint(cmd.keyHash) } }
    case 'addSigningKey':
      return { target: { kind: 'publisher', id: cmd.id }, details: { keyId: cmd.keyId, purpose: cmd.purpose, ...(cmd.scope ? { scope: cmd.scope } : {}) } }
    case 'revokeSigningKey':
      return { target: { kind: 'publisher', id: cmd.id }, details: { keyId: cmd.keyId } }
    case 'addAdminKey':
      return { target: { kind: 'admin', id: cmd.id }, details: { keyFingerprint: keyFingerprint(cmd.hash) } }
    case 'addKey':
      return { target: { kind: cmd.principal.kind, id: cmd.principal.id }, details: { keyFingerprint: keyFingerprint(cmd.hash), scope: cmd.scope } }
    case 'removeKey':
      return { target: { kind: 'key', id: keyFingerprint(cmd.hash) }, details: {} }
    case 'setSigningKey':
      return { target: { kind: 'publisher', id: cmd.publisherId }, details: { keyId: cmd.keyId, purpose: cmd.purpose, ...(cmd.scope ? { scope: cmd.scope } : {}) } }
    case 'import':
      return { target: { kind: 'store', id: 'tenants' }, details: { entries: cmd.entries.length } }
    default:
      return { target: { kind: 'store', id: 'tenants' }, details: {} }
  }
}

/**
 * describeCommand, never throwing: a record of the topic that is not a well-formed command (applied
 * or refused by the state machine as it is) must not change its verdict by failing here.
 */
function describeSafely(cmd: TenantCommand): ReturnType<typeof describeCommand> {
  try {
    return describeCommand(cmd)
  } catch {
    return { target: { kind: 'store', id: 'tenants' }, details: {} }
  }
}

/** The actor a command names, checked; `unknown` for a command without one (or with a malformed one). */
export function actorOf(cmd: { by?: unknown }): ReportedActor {
  const by = cmd.by as Partial<TenantActor> | undefined
  if (by?.kind === 'admin' && typeof by.id === 'string' && typeof by.keyFingerprint === 'string') {
    return { kind: 'admin', id: by.id, keyFingerprint: by.keyFingerprint }
  }
  if (by?.kind === 'system' && typeof by.id === 'string') return { kind: 'system', id: by.id }
  return UNKNOWN_ACTOR
}

/**
 * Writes the change log entry of `cmd` at `seq`; call inside the transaction that applies (or
 * records the refusal of) the command, so the entry and the change are one.
 */
export function recordChange(
  db: RootDatabase,
  seq: number,
  cmd: TenantCommand,
  { appendedAt, refusal }: { appendedAt: number; refusal?: TenantChange['refusal'] },
): void {
  const { target, details } = describeSafely(cmd)
  const entry: TenantChange = {
    seq,
    at: typeof cmd?.at === 'number' ? cmd.at : appendedAt,
    actor: actorOf(cmd ?? {}),
    op: cmd?.op,
    target,
    details,
    outcome: refusal ? 'refused' : 'applied',
    ...(refusal ? { refusal } : {}),
  }
  db.put(changeKey(seq), entry)
}

export const MAX_CHANGES_PAGE = 1000

/** Change log entries, newest first: at most `limit`, each with `seq` below `before` when given. */
export function listChanges(db: RootDatabase, { limit, before }: { limit: number; before?: number }): TenantChange[] {
  const out: TenantChange[] = []
  if (before !== undefined && before <= 0) return out
  const start = before === undefined ? `${CHANGE_PREFIX}\uffff` : changeKey(before - 1)
  for (const { value } of db.getRange({ start, end: CHANGE_PREFIX, reverse: true })) {
    if (out.length >= limit) break
    out.push(value as TenantChange)
  }
  return out
}
