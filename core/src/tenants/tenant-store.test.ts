import { openTenantStore } from './tenant-store.js'
import { tenantStoreSuite } from '../testing/tenant-store.contract.js'

tenantStoreSuite(async (dir) => openTenantStore({ dir }))
