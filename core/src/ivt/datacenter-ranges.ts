import { detachedText } from '@adc/schemas'

/**
 * Datacenter IPv4 ranges for the GIVT rule `givt_datacenter_ip`.
 *
 * A small, documented sample of large blocks that cloud and hosting providers announce for their
 * compute services (AWS EC2, Google Compute Engine, Microsoft Azure, DigitalOcean, Hetzner, OVH,
 * Linode/Akamai), not an exhaustive list: no maintained offline list exists on npm (the packages found
 * download the providers' JSON feeds at run time). A deployment refreshes this from the providers'
 * published range files; the rule and its tests do not change.
 */
export const DATACENTER_RANGES_V4: ReadonlyArray<readonly [cidr: string, provider: string]> = [
  ['3.0.0.0/9', 'aws'],
  ['18.204.0.0/14', 'aws'],
  ['52.0.0.0/11', 'aws'],
  ['54.144.0.0/12', 'aws'],
  ['34.64.0.0/10', 'gcp'],
  ['35.184.0.0/13', 'gcp'],
  ['35.192.0.0/12', 'gcp'],
  ['13.64.0.0/11', 'azure'],
  ['40.74.0.0/15', 'azure'],
  ['20.36.0.0/14', 'azure'],
  ['104.131.0.0/16', 'digitalocean'],
  ['159.65.0.0/16', 'digitalocean'],
  ['167.99.0.0/16', 'digitalocean'],
  ['138.197.0.0/16', 'digitalocean'],
  ['46.101.0.0/16', 'digitalocean'],
  ['178.62.0.0/16', 'digitalocean'],
  ['88.198.0.0/16', 'hetzner'],
  ['78.46.0.0/15', 'hetzner'],
  ['5.9.0.0/16', 'hetzner'],
  ['136.243.0.0/16', 'hetzner'],
  ['148.251.0.0/16', 'hetzner'],
  ['95.216.0.0/15', 'hetzner'],
  ['137.74.0.0/16', 'ovh'],
  ['145.239.0.0/16', 'ovh'],
  ['51.68.0.0/16', 'ovh'],
  ['45.33.0.0/17', 'linode'],
  ['139.162.0.0/16', 'linode'],
  ['172.104.0.0/15', 'linode'],
]

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined
    const v = Number(p)
    if (v > 255) return undefined
    n = n * 256 + v
  }
  return n >>> 0
}

const COMPILED = DATACENTER_RANGES_V4.map(([cidr, provider]) => {
  const [base, bits] = cidr.split('/')
  const len = Number(bits)
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0
  return { net: (ipv4ToInt(base!)! & mask) >>> 0, mask, provider }
})

/**
 * The provider whose range holds this address or truncated prefix (`203.0.113.0/24`, `203.0.113.0`),
 * or undefined. IPv6 prefixes are not matched by this sample list.
 */
export function datacenterProvider(ipOrPrefix: string | undefined): string | undefined {
  if (!ipOrPrefix) return undefined
  const cached = cache.get(ipOrPrefix)
  if (cached !== undefined) return cached || undefined
  const n = ipv4ToInt(ipOrPrefix.split('/')[0]!)
  let found = ''
  if (n !== undefined) for (const r of COMPILED) if (((n & r.mask) >>> 0) === r.net) { found = r.provider; break }
  if (cache.size >= 50_000) cache.clear()
  cache.set(detachedText(ipOrPrefix), found) // kept past its event: not a cut holding its record's text
  return found || undefined
}

/** Prefix verdicts ('' = none): traffic repeats prefixes; bounded, cleared when full. */
const cache = new Map<string, string>()
