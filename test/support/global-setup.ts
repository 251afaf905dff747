// Placeholder until the Temporal dev-server harness lands.
export default async function globalSetup(): Promise<void> {}
