import { openTenantStore } from './tenant-store.js'
import { tenantStoreSuite } from './tenant-store.case.js'

tenantStoreSuite(async (dir) => openTenantStore({ dir }))
