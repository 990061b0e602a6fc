import { ivt2026111 } from './ivt-2026-11-1.js'
import { ivt2026121 } from './ivt-2026-12-1.js'
import type { IvtModel } from './model.js'

export type { IvtModel, ScoredFields } from './model.js'

/** Every IVT model a reprocess can run, by version. Add a module here; never change a released one. */
export const IVT_MODELS: ReadonlyMap<string, IvtModel> = new Map([ivt2026111, ivt2026121].map((m) => [m.version, m]))

/** The model the processor applies to live traffic. */
export const CURRENT_IVT_MODEL: IvtModel = ivt2026111

export function ivtModel(version: string): IvtModel | undefined {
  return IVT_MODELS.get(version)
}
