import { storeSpecification } from './store-specification.js';
import { auditDatabase } from './decisions.js';

storeSpecification('SQLite', auditDatabase);
