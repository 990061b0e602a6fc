import type { RootDatabase } from 'lmdb'
import {
  TenantConflictError,
  TenantReferenceError,
  purposeOf,
  requestScopeOf,
  scopeOf,
  type Advertiser,
  type ApiKeyScope,
  type Campaign,
  type Pricing,
  type Principal,
  type Publisher,
  type RateLimit,
  type RequestKeyScope,
  type SigningKeyPurpose,
} from './tenant-store.js'
import { CHANGE_PREFIX, recordChange, type TenantActor, type TenantChange } from './change-log.js'

/**
 * The tenant state machine: every change to tenants is a command, and `applyTenantCommand` turns
 * a command into writes on an LMDB view, or refuses it. It reads nothing but the view and the
 * command (no clock, no randomness: keys, secrets and timestamps are chosen by the writer and travel
 * in the command), so every replica that applies the same commands in the same order holds the same
 * view and gives the same verdict on each command.
 */

/** Key prefixes of the view. */
export const P = {
  advertiser: 'adv:',
  campaign: 'cmp:',
  publisher: 'pub:',
  key: 'key:',
  /** Signing key id → publisher id; never removed, so a revoked key id is never given out again. */
  signingKeyId: 'skid:',
  version: 'meta:version',
  /** Next offset of the tenant topic this view has applied (shared stores only). */
  offset: 'meta:offset',
  /** Set when the view records the change log from its first command on (change-log.ts); a view without it is rebuilt once. */
  changeLog: 'meta:changeLog',
  /** Next change log position of a store of one process (no topic offsets). */
  changeSeq: 'meta:changeSeq',
} as const

/**
 * Who wrote a command (`by`) and when (`at`, epoch ms of the writer's clock), on every command
 * written since commands named their actor (change-log.ts). Both optional: older commands in the
 * topic have neither (the change log reports their actor as unknown), and a replica of an earlier
 * build applies a command that has them as before (it reads only the fields of its op). `at` is also
 * the creation time of what a create command creates.
 */
export interface CommandAudit {
  by?: TenantActor
  at?: number
}

export type TenantCommand = CommandAudit & (
  | { op: 'createAdvertiser'; id: string; name: string; keyHash: string; at: number }
  | { op: 'createCampaign'; id: string; advertiserId: string; name: string; pricing: Pricing; publisherIds?: string[]; at: number }
  | {
    op: 'createPublisher'; id: string; name: string; hash: string; publicHash: string
    signingKeyId: string; signingSecret: string; requestSigningKeyId: string; requestSigningSecret: string
    /** Absent in commands written before request key scopes: `app`. */
    requestSigningScope?: RequestKeyScope
    rateLimit: RateLimit; at: number
  }
  | { op: 'updatePublisher'; id: string; patch: { rateLimit?: RateLimit; active?: boolean; name?: string } }
  | { op: 'addPublisherApiKey'; id: string; hash: string; scope: ApiKeyScope }
  | { op: 'revokePublisherApiKey'; id: string; keyHash: string }
  /** `scope`: request keys only; absent on a request key (commands before scopes): `app`. */
  | { op: 'addSigningKey'; id: string; keyId: string; secret: string; purpose: SigningKeyPurpose; scope?: RequestKeyScope }
  | { op: 'revokeSigningKey'; id: string; keyId: string }
  | { op: 'addAdminKey'; id: string; hash: string }
  | { op: 'addKey'; principal: Principal; hash: string; scope: ApiKeyScope }
  | { op: 'removeKey'; hash: string }
  | { op: 'setSigningKey'; publisherId: string; keyId: string; secret: string; purpose: SigningKeyPurpose; scope?: RequestKeyScope }
  /** Entries of a store written before the shared topic existed (upgrade); applied only to keys not yet present. */
  | { op: 'import'; entries: Array<[string, unknown]> }
)

const scopesOf = (p: Publisher): Record<string, ApiKeyScope> =>
  p.apiKeyScopes ?? Object.fromEntries(p.apiKeyHashes.map((h) => [h, 'server' as const]))
const purposesOf = (p: Publisher): Record<string, SigningKeyPurpose> =>
  p.signingKeyPurposes ?? Object.fromEntries(Object.keys(p.signingKeys).map((k) => [k, 'token' as const]))
/** Request key scopes with `keyId` set to `scope` (a request key) or left out (a token key). */
const scopesWith = (p: Publisher, keyId: string, purpose: SigningKeyPurpose, scope: RequestKeyScope | undefined): Record<string, RequestKeyScope> => {
  const { [keyId]: _old, ...rest } = p.signingKeyScopes ?? {}
  return purpose === 'request' ? { ...rest, [keyId]: scope ?? 'app' } : rest
}

export function listPrefix<T>(db: RootDatabase, prefix: string): T[] {
  const out: T[] = []
  for (const { value } of db.getRange({ start: prefix, end: `${prefix}\uffff` })) out.push(value as T)
  return out
}

/** A key of tenant data: not the view's meta keys nor its change log. */
const isTenantKey = (key: unknown): boolean => !String(key).startsWith('meta:') && !String(key).startsWith(CHANGE_PREFIX)

/** Whether the view holds any tenant data (anything but its meta keys and change log). */
export function hasTenantData(db: RootDatabase): boolean {
  for (const { key } of db.getRange({})) if (isTenantKey(key)) return true
  return false
}

/** Every tenant entry of the view (for the upgrade import). */
export function tenantEntries(db: RootDatabase): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = []
  for (const { key, value } of db.getRange({})) if (isTenantKey(key)) out.push([String(key), value])
  return out
}

/** How the change log names a refusal of the state machine. */
export function refusalOf(err: unknown): TenantChange['refusal'] {
  return err instanceof TenantConflictError ? 'conflict' : err instanceof TenantReferenceError ? 'unknown_reference' : 'failed'
}

/**
 * Applies `cmd` to the view with its change log entry at `seq` and `advance` (the view's position:
 * the topic offset of a shared store, its own sequence otherwise) in one transaction. A command the
 * state machine refuses (it throws) changes nothing but leaves its entry, marked refused, with the
 * same advance in a transaction of its own: every command is in the change log once, applied or not.
 */
export function applyRecorded(
  db: RootDatabase,
  cmd: TenantCommand,
  at: { seq: number; appendedAt: number; advance: () => void },
): { result: unknown } | { refusal: unknown } {
  try {
    return {
      result: db.transactionSync(() => {
        const out = applyTenantCommand(db, cmd)
        recordChange(db, at.seq, cmd, { appendedAt: at.appendedAt })
        at.advance()
        return out
      }),
    }
  } catch (refusal) {
    db.transactionSync(() => {
      recordChange(db, at.seq, cmd, { appendedAt: at.appendedAt, refusal: refusalOf(refusal) })
      at.advance()
    })
    return { refusal }
  }
}

/**
 * Applies one command to the view. Must run inside an LMDB transaction: a refusal throws
 * (TenantConflictError, TenantReferenceError) and the caller's transaction rolls back any write.
 * Returns what the store method hands back to its caller.
 */
export function applyTenantCommand(db: RootDatabase, cmd: TenantCommand): unknown {
  const bump = (): void => void db.put(P.version, ((db.get(P.version) as number | undefined) ?? 0) + 1)
  const mustPublisher = (id: string): Publisher => {
    const p = db.get(P.publisher + id) as Publisher | undefined
    if (!p) throw new TenantReferenceError(`publisher ${id} does not exist`)
    return p
  }
  /** Refuses a key id held (or once held) by any publisher. */
  const claimKeyId = (keyId: string, publisherId: string): void => {
    if (db.get(P.signingKeyId + keyId) !== undefined || listPrefix<Publisher>(db, P.publisher).some((p) => keyId in p.signingKeys)) {
      throw new TenantConflictError(`signing key ${keyId} already exists`)
    }
    db.put(P.signingKeyId + keyId, publisherId)
  }
  const samePrincipal = (a: Principal, b: Principal): boolean => a.kind === b.kind && a.id === b.id

  switch (cmd.op) {
    case 'createAdvertiser': {
      if (db.get(P.advertiser + cmd.id) !== undefined) throw new TenantConflictError(`advertiser ${cmd.id} already exists`)
      if (db.get(P.key + cmd.keyHash) !== undefined) throw new TenantConflictError('that API key is already in use')
      const advertiser: Advertiser = { id: cmd.id, name: cmd.name, createdAt: cmd.at }
      db.put(P.advertiser + cmd.id, advertiser)
      db.put(P.key + cmd.keyHash, { kind: 'advertiser', id: cmd.id } satisfies Principal)
      bump()
      return advertiser
    }
    case 'createCampaign': {
      if (db.get(P.campaign + cmd.id) !== undefined) throw new TenantConflictError(`campaign ${cmd.id} already exists`)
      if (db.get(P.advertiser + cmd.advertiserId) === undefined) throw new TenantReferenceError(`advertiser ${cmd.advertiserId} does not exist`)
      for (const p of cmd.publisherIds ?? []) if (db.get(P.publisher + p) === undefined) throw new TenantReferenceError(`publisher ${p} does not exist`)
      const campaign: Campaign = {
        id: cmd.id,
        advertiserId: cmd.advertiserId,
        name: cmd.name,
        pricing: { model: cmd.pricing.model, priceMicros: cmd.pricing.priceMicros },
        ...(cmd.publisherIds === undefined ? {} : { publisherIds: cmd.publisherIds }),
        createdAt: cmd.at,
      }
      db.put(P.campaign + cmd.id, campaign)
      bump()
      return campaign
    }
    case 'createPublisher': {
      if (db.get(P.publisher + cmd.id) !== undefined) throw new TenantConflictError(`publisher ${cmd.id} already exists`)
      if (db.get(P.key + cmd.hash) !== undefined || db.get(P.key + cmd.publicHash) !== undefined) throw new TenantConflictError('that API key is already in use')
      claimKeyId(cmd.signingKeyId, cmd.id)
      claimKeyId(cmd.requestSigningKeyId, cmd.id)
      const publisher: Publisher = {
        id: cmd.id,
        name: cmd.name,
        apiKeyHashes: [cmd.hash, cmd.publicHash],
        apiKeyScopes: { [cmd.hash]: 'server', [cmd.publicHash]: 'public' },
        signingKeys: { [cmd.signingKeyId]: cmd.signingSecret, [cmd.requestSigningKeyId]: cmd.requestSigningSecret },
        signingKeyPurposes: { [cmd.signingKeyId]: 'token', [cmd.requestSigningKeyId]: 'request' },
        signingKeyScopes: { [cmd.requestSigningKeyId]: cmd.requestSigningScope ?? 'app' },
        rateLimit: cmd.rateLimit,
        active: true,
        createdAt: cmd.at,
      }
      db.put(P.publisher + cmd.id, publisher)
      db.put(P.key + cmd.hash, { kind: 'publisher', id: cmd.id } satisfies Principal)
      db.put(P.key + cmd.publicHash, { kind: 'publisher', id: cmd.id } satisfies Principal)
      bump()
      return publisher
    }
    case 'updatePublisher': {
      const p = mustPublisher(cmd.id)
      const { patch } = cmd
      const out: Publisher = {
        ...p,
        ...(patch.name !== undefined ? { name: patch.name } : {}),
        ...(patch.rateLimit ? { rateLimit: patch.rateLimit } : {}),
        ...(patch.active !== undefined ? { active: patch.active } : {}),
      }
      db.put(P.publisher + cmd.id, out)
      bump()
      return out
    }
    case 'addPublisherApiKey': {
      const p = mustPublisher(cmd.id)
      if (db.get(P.key + cmd.hash) !== undefined) throw new TenantConflictError('that API key is already in use')
      const out: Publisher = { ...p, apiKeyHashes: [...p.apiKeyHashes, cmd.hash], apiKeyScopes: { ...scopesOf(p), [cmd.hash]: cmd.scope } }
      db.put(P.publisher + cmd.id, out)
      db.put(P.key + cmd.hash, { kind: 'publisher', id: cmd.id } satisfies Principal)
      bump()
      return out
    }
    case 'revokePublisherApiKey': {
      const p = mustPublisher(cmd.id)
      if (!p.apiKeyHashes.includes(cmd.keyHash)) throw new TenantReferenceError('no such key on this publisher')
      if (p.apiKeyHashes.length === 1) throw new TenantConflictError('a publisher keeps at least one API key; add one first')
      const { [cmd.keyHash]: _gone, ...scopes } = scopesOf(p)
      const out: Publisher = { ...p, apiKeyHashes: p.apiKeyHashes.filter((h) => h !== cmd.keyHash), apiKeyScopes: scopes }
      db.put(P.publisher + cmd.id, out)
      db.remove(P.key + cmd.keyHash)
      bump()
      return out
    }
    case 'addSigningKey': {
      const p = mustPublisher(cmd.id)
      claimKeyId(cmd.keyId, cmd.id)
      const out: Publisher = {
        ...p,
        signingKeys: { ...p.signingKeys, [cmd.keyId]: cmd.secret },
        signingKeyPurposes: { ...purposesOf(p), [cmd.keyId]: cmd.purpose },
        signingKeyScopes: scopesWith(p, cmd.keyId, cmd.purpose, cmd.scope),
      }
      db.put(P.publisher + cmd.id, out)
      bump()
      return out
    }
    case 'revokeSigningKey': {
      const p = mustPublisher(cmd.id)
      if (!(cmd.keyId in p.signingKeys)) throw new TenantReferenceError('no such signing key on this publisher')
      const { [cmd.keyId]: _secret, ...signingKeys } = p.signingKeys
      const { [cmd.keyId]: _purpose, ...purposes } = purposesOf(p)
      const { [cmd.keyId]: _scope, ...scopes } = p.signingKeyScopes ?? {}
      const out: Publisher = { ...p, signingKeys, signingKeyPurposes: purposes, signingKeyScopes: scopes }
      db.put(P.publisher + cmd.id, out)
      // Legacy key ids (stored before the index) are claimed now, so they stay taken.
      if (db.get(P.signingKeyId + cmd.keyId) === undefined) db.put(P.signingKeyId + cmd.keyId, cmd.id)
      bump()
      return out
    }
    case 'addAdminKey': {
      const existing = db.get(P.key + cmd.hash) as Principal | undefined
      if (existing && !(existing.kind === 'admin' && existing.id === cmd.id)) throw new TenantConflictError('that key is already in use')
      if (!existing) db.put(P.key + cmd.hash, { kind: 'admin', id: cmd.id } satisfies Principal)
      return undefined
    }
    case 'addKey': {
      const { principal, hash, scope } = cmd
      const existing = db.get(P.key + hash) as Principal | undefined
      if (existing && !samePrincipal(existing, principal)) throw new TenantConflictError('that key is already in use')
      if (principal.kind === 'publisher') {
        const p = mustPublisher(principal.id)
        if (existing && scopeOf(p, hash) === scope) return undefined
        const hashes = p.apiKeyHashes.includes(hash) ? p.apiKeyHashes : [...p.apiKeyHashes, hash]
        db.put(P.publisher + p.id, { ...p, apiKeyHashes: hashes, apiKeyScopes: { ...scopesOf(p), [hash]: scope } })
      } else if (existing) {
        return undefined
      } else if (principal.kind === 'advertiser' && db.get(P.advertiser + principal.id) === undefined) {
        throw new TenantReferenceError(`advertiser ${principal.id} does not exist`)
      }
      db.put(P.key + hash, { kind: principal.kind, id: principal.id } satisfies Principal)
      bump()
      return undefined
    }
    case 'removeKey': {
      const existing = db.get(P.key + cmd.hash) as Principal | undefined
      if (!existing) return undefined
      if (existing.kind === 'publisher') {
        const p = db.get(P.publisher + existing.id) as Publisher | undefined
        if (p) {
          const { [cmd.hash]: _gone, ...scopes } = scopesOf(p)
          db.put(P.publisher + p.id, { ...p, apiKeyHashes: p.apiKeyHashes.filter((h) => h !== cmd.hash), apiKeyScopes: scopes })
        }
      }
      db.remove(P.key + cmd.hash)
      bump()
      return undefined
    }
    case 'setSigningKey': {
      const p = mustPublisher(cmd.publisherId)
      const scope = cmd.purpose === 'request' ? (cmd.scope ?? 'app') : undefined
      if (p.signingKeys[cmd.keyId] === cmd.secret && purposeOf(p, cmd.keyId) === cmd.purpose && requestScopeOf(p, cmd.keyId) === scope) return undefined
      const owner = db.get(P.signingKeyId + cmd.keyId) as string | undefined
      if (owner !== undefined && owner !== cmd.publisherId) throw new TenantConflictError(`signing key id ${cmd.keyId} belongs to another publisher`)
      if (owner === undefined) db.put(P.signingKeyId + cmd.keyId, cmd.publisherId)
      db.put(P.publisher + cmd.publisherId, {
        ...p,
        signingKeys: { ...p.signingKeys, [cmd.keyId]: cmd.secret },
        signingKeyPurposes: { ...purposesOf(p), [cmd.keyId]: cmd.purpose },
        signingKeyScopes: scopesWith(p, cmd.keyId, cmd.purpose, scope),
      })
      bump()
      return undefined
    }
    case 'import': {
      let changed = false
      for (const [key, value] of cmd.entries) {
        if (!isTenantKey(key) || db.get(key) !== undefined) continue
        db.put(key, value)
        changed = true
      }
      if (changed) bump()
      return undefined
    }
  }
}
