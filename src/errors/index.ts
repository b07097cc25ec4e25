export {
  GATEWAY_ERROR_CODES,
  HTTP_STATUSES,
  httpStatusOf,
  isGatewayErrorCode,
  type GatewayErrorCode,
  type HttpStatusOf,
} from './error-codes.js';
export { BadUserInputError, GatewayError, type GatewayErrorOptions } from './gateway-error.js';
