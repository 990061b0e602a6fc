package dev.adc.sdk

/** The SDK's version, sent in the User-Agent. */
const val SDK_VERSION = "0.1.0"
