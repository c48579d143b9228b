// The subscriptions the dashboard listens to (graphql-transport-ws on /graphql). Events
// only say "something changed": pages refetch what they show with their own queries,
// which also keeps them right after a reconnect (delivery is live only).

export const AGENT_EVENTS = `subscription AgentEvents($agentId: ID) {
  agentEvents(agentId: $agentId) { kind agentId workerId }
}`;

export const INSTALL_TOKEN = `subscription InstallToken($id: ID!) {
  installToken(id: $id) { agentId token { id status } agent { id hostname } }
}`;

export const AGENT_METRICS = `subscription AgentMetrics($agentId: ID!) {
  agentMetrics(agentId: $agentId) { agentId recordedAt }
}`;

export const INSTALL_TOKEN_REFUSALS = `subscription InstallTokenRefusals($id: ID!) {
  installTokenRefusals(id: $id) { tokenId code message hostname }
}`;
